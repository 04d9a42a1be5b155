package wal

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cidstore/cidstore/vfs"
)

// SyncMode says when appended records count as durable.
type SyncMode int

const (
	// SyncAlways acknowledges a record only after it has been written and
	// fsynced. Concurrent writers share fsyncs (group commit).
	SyncAlways SyncMode = iota
	// SyncInterval acknowledges a record once it has been written to the
	// operating system and fsyncs at most once per interval, so a machine
	// crash loses at most about one interval of acknowledged records.
	SyncInterval
	// SyncNever acknowledges a record once it has been written to the
	// operating system and fsyncs only when a segment is rotated and on
	// Close.
	SyncNever
)

// String returns the mode's name.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

const (
	// DefaultSegmentSize is the segment size used when Options.SegmentSize
	// is 0.
	DefaultSegmentSize = 64 << 20
	// MinSegmentSize and MaxSegmentSize bound Options.SegmentSize; Open
	// rejects a size outside them with ErrInvalidOptions. Below a page
	// (4 KiB) a log rotates every few records, each rotation costing a
	// file and four fsyncs (at 1 byte, one file per record); above 4 GiB
	// one preallocated spare would take that much disk. Segments as small
	// as the minimum are for tests that exercise rotation cheaply;
	// DefaultSegmentSize suits production.
	MinSegmentSize = 4 << 10
	MaxSegmentSize = 4 << 30
	// DefaultSyncInterval is the interval used by SyncInterval when none is
	// given.
	DefaultSyncInterval = 100 * time.Millisecond
)

// Options configures Open and Recover.
type Options struct {
	// FS is the filesystem; nil means vfs.Default.
	FS vfs.FS
	// Dir is the log directory. It is created (mode 0700) if missing.
	Dir string
	// SegmentSize is the size above which the log moves to a new segment.
	// A record is never split: a segment holds at least one record and is
	// rotated before a record that would take it past SegmentSize.
	// 0 means DefaultSegmentSize; otherwise it must lie within
	// MinSegmentSize..MaxSegmentSize (4 KiB..4 GiB).
	SegmentSize int64
	// Sync is the durability policy (default SyncAlways).
	Sync SyncMode
	// SyncInterval is the fsync period for SyncInterval; 0 means
	// DefaultSyncInterval.
	SyncInterval time.Duration
	// Repair makes Open repair the log (see Repair: it keeps the intact
	// records that start the log and moves the rest aside) instead of
	// failing with a *CorruptError. What was dropped is logged and
	// reported in Stats and RepairReport.
	Repair bool
	// CheckRecord, if not nil, validates every record that passes its
	// checksum, at Open and in Scrub (Verify and Repair take it too): a
	// record it rejects is damage at the record's offset, like a bad
	// checksum, so that a log whose payloads the caller cannot read fails
	// (or is repaired) here and not only when the caller replays it. It
	// must not keep the payload.
	CheckRecord func(Record) error
	// Logger receives recovery and failure reports; nil discards them.
	Logger *slog.Logger
	// ReadOnly opens an existing log for reading: Open validates it as
	// usual but changes nothing on disk (a torn tail stays, and the log
	// ends before it), creates nothing, takes no lock (the caller keeps
	// writers out) and starts no goroutine. Append, WaitDurable beyond
	// the last record and Sync return ErrReadOnly. Not with Repair.
	ReadOnly bool
	// NoLock says that the caller keeps every other writer out of Dir
	// itself, as a store does with the lock on its own directory, which
	// holds the log's: Open then takes no lock of its own. Without it
	// Open locks the file LOCK in Dir (see the package documentation).
	NoLock bool
	// NoPreallocate turns off segment preallocation (see the package
	// documentation). Preallocation makes each sync cheaper on
	// filesystems that overwrite in place, such as ext4 and XFS, at the
	// cost of writing every segment twice; it gains nothing on
	// copy-on-write filesystems (btrfs, ZFS). Segments smaller than 1 MiB
	// are never preallocated.
	NoPreallocate bool
}

// normalize checks opts and fills in the defaults.
func (opts Options) normalize() (Options, error) {
	if opts.Dir == "" {
		return opts, fmt.Errorf("%w: Dir is empty", ErrInvalidOptions)
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentSize < MinSegmentSize || opts.SegmentSize > MaxSegmentSize {
		return opts, fmt.Errorf("%w: SegmentSize %d outside %d..%d", ErrInvalidOptions,
			opts.SegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	if opts.Sync < SyncAlways || opts.Sync > SyncNever {
		return opts, fmt.Errorf("%w: Sync %v", ErrInvalidOptions, opts.Sync)
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReadOnly && opts.Repair {
		return opts, fmt.Errorf("%w: ReadOnly with Repair", ErrInvalidOptions)
	}
	return opts, nil
}

// histBuckets is the number of buckets of Stats.RecordsPerFsync.
const histBuckets = 32

// Stats are counters describing a Log.
type Stats struct {
	Appends       uint64 // records appended
	AppendedBytes uint64 // payload bytes appended
	Writes        uint64 // write calls to segment files
	WrittenBytes  uint64 // bytes written to segment files
	Fsyncs        uint64 // fsyncs of segment files
	// PreallocatedSegments counts segments the log started on a
	// zero-filled spare (see Options.NoPreallocate).
	PreallocatedSegments uint64
	// RecordsPerFsync is a histogram of how many records each fsync made
	// durable: bucket i counts fsyncs covering [2^i, 2^(i+1)) records.
	RecordsPerFsync [histBuckets]uint64
	Segments        int    // segment files in the log
	FirstLSN        uint64 // first LSN of the oldest segment
	LastLSN         uint64 // last appended LSN
	WrittenLSN      uint64 // last LSN written to the OS
	DurableLSN      uint64 // last LSN fsynced
	// TornBytesDropped is the size of the torn tail truncated at Open.
	TornBytesDropped int64
	// RepairedBytesDropped and RepairedRecordsDropped describe what a
	// repair at Open (Options.Repair) removed.
	RepairedBytesDropped   int64
	RepairedRecordsDropped int64
}

// Stats returns a snapshot of the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	s := Stats{
		Appends:                l.app.appends,
		AppendedBytes:          l.app.appendBytes,
		Segments:               len(l.st.segs),
		FirstLSN:               l.st.segs[0].first,
		LastLSN:                l.app.nextLSN - 1,
		TornBytesDropped:       l.report.TornBytes,
		RepairedBytesDropped:   l.report.BytesDropped,
		RepairedRecordsDropped: l.report.RecordsDropped,
	}
	l.mu.Unlock()
	c := &l.ctr
	s.Writes = c.writes.Load()
	s.WrittenBytes = c.bytesWritten.Load()
	s.Fsyncs = c.fsyncs.Load()
	s.PreallocatedSegments = c.preallocated.Load()
	for i := range s.RecordsPerFsync {
		s.RecordsPerFsync[i] = c.perFsync[i].Load()
	}
	s.WrittenLSN = l.prog.written.Load()
	s.DurableLSN = l.prog.synced.Load()
	return s
}

// RepairReport returns what recovery at Open dropped (torn tail, and the
// repair cut when Options.Repair was set).
func (l *Log) RepairReport() RepairReport {
	r := l.report
	r.Damage = slices.Clone(r.Damage)
	r.Dropped = slices.Clone(r.Dropped)
	r.MovedAside = slices.Clone(r.MovedAside)
	r.Rewritten = slices.Clone(r.Rewritten)
	return r
}
