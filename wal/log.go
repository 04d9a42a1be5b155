package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
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

	// maxPending is the amount of encoded but unwritten data above which
	// Append blocks until the flusher takes the pending buffer.
	maxPending = 64 << 20
	// initialBuffer is the initial capacity of each flush buffer.
	initialBuffer = 256 << 10
	// maxRetainedBuffer is the largest flush buffer kept for reuse; larger
	// ones (after a burst of big records) are released.
	maxRetainedBuffer = 16 << 20
	// histBuckets is the number of buckets of Stats.RecordsPerFsync.
	histBuckets = 32
)

// Options configures Open.
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
	// NoPreallocate turns off segment preallocation (see the package
	// documentation). Preallocation makes each sync cheaper on
	// filesystems that overwrite in place, such as ext4 and XFS, at the
	// cost of writing every segment twice; it gains nothing on
	// copy-on-write filesystems (btrfs, ZFS). Segments smaller than 1 MiB
	// are never preallocated.
	NoPreallocate bool
}

// rotation marks where, inside a flush buffer, a new segment starts.
type rotation struct {
	off int    // offset in the buffer of the first frame of the new segment
	lsn uint64 // LSN of that frame, which names the segment
}

// closedChan is a permanently closed channel.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Log is an open write-ahead log. All methods are safe for concurrent use.
type Log struct {
	fs       vfs.FS
	dir      string
	segSize  int64
	logger   *slog.Logger
	lock     io.Closer
	report   RepairReport // what recovery at Open dropped
	check    func(Record) error
	readOnly bool

	mu           sync.Mutex
	spaceCond    sync.Cond // Append waiting for the pending buffer to drain
	spaceWaiters int
	pending      []byte     // encoded frames not yet handed to the flusher
	pendRot      []rotation // rotations inside pending
	spare        []byte     // the other flush buffer, reused
	spareRot     []rotation
	nextLSN      uint64
	projSize     int64 // size of the active segment once pending is written
	mode         SyncMode
	interval     time.Duration
	err          error // sticky failure
	closing      bool  // Close has been called
	exited       bool  // the flusher has stopped
	closeErr     error // result of the flusher's shutdown
	inflightLast uint64
	inflightCh   chan struct{}                 // closed when the in-flight batch is acknowledged
	inflightPub  atomic.Pointer[chan struct{}] // inflightCh, for InFlight without l.mu
	pendingCh    chan struct{}                 // closed when the pending batch is acknowledged
	segs         []segment
	appends      uint64
	appendBytes  uint64
	syncHook     func() // tests: called after each periodic fsync

	acked   atomic.Uint64 // highest LSN acknowledged per policy
	written atomic.Uint64 // highest LSN written to the OS
	synced  atomic.Uint64 // highest LSN fsynced

	preallocated atomic.Uint64 // segments started on a spare
	writes       atomic.Uint64
	bytesWritten atomic.Uint64
	fsyncs       atomic.Uint64
	perFsync     [histBuckets]atomic.Uint64

	// replayMu keeps TruncateBefore from removing segments under Replay.
	replayMu sync.RWMutex

	wake    chan struct{}
	syncReq chan chan error // Sync requests to the flusher
	closeCh chan struct{}
	doneCh  chan struct{}

	// Segment preallocation (prealloc.go); prep is nil when it is off.
	prep  *preparer
	ready atomic.Pointer[spareFile] // a zero-filled spare, set by the preparer, taken by the flusher
	made  chan struct{}             // tests: a spare was made ready (capacity 1, never blocks)

	// Owned by the flusher goroutine.
	f         vfs.File
	fpath     string
	fSize     int64 // bytes of the active segment in use (header and records)
	fPrealloc bool  // the active segment was zero-filled ahead
	fWritten  uint64
	fSynced   uint64
}

// Open opens the log in opts.Dir, creating it if needed, and starts its
// flusher goroutine.
//
// Open validates every segment in full: every record's checksum, that LSNs
// increase by one within and across segments, and every segment header. A
// damaged record at the tail of the last segment with no valid record after
// it is a torn write: the segment is truncated there (and fsynced), the
// dropped bytes are logged and counted in Stats.TornBytesDropped. Any other
// damage makes Open fail with a *CorruptError naming the file and offset,
// unless opts.Repair is set (see Repair). Open takes an exclusive lock on
// the directory (file LOCK); a second Open of the same directory fails with
// an error matching vfs.ErrLocked.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: Dir is empty", ErrInvalidOptions)
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentSize < MinSegmentSize || opts.SegmentSize > MaxSegmentSize {
		return nil, fmt.Errorf("%w: SegmentSize %d outside %d..%d", ErrInvalidOptions,
			opts.SegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	if opts.Sync < SyncAlways || opts.Sync > SyncNever {
		return nil, fmt.Errorf("%w: Sync %v", ErrInvalidOptions, opts.Sync)
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	fs, dir := opts.FS, opts.Dir
	if opts.ReadOnly {
		return openReadOnly(opts)
	}
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: create dir: %w", err)
	}
	lock, err := fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	l, err := open(opts, lock)
	if err != nil {
		return nil, errors.Join(err, lock.Close())
	}
	go l.run()
	if l.prep != nil {
		go l.prepare()
	}
	return l, nil
}

func open(opts Options, lock io.Closer) (*Log, error) {
	fs, dir := opts.FS, opts.Dir
	if err := removeLeftoverSpare(fs, dir); err != nil {
		return nil, err
	}
	rec, err := recoverLog(fs, dir, recoverOptions{repair: opts.Repair, check: opts.CheckRecord, logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	var (
		f        vfs.File
		path     string
		size     int64
		prealloc bool
	)
	if len(rec.segs) == 0 {
		f, path, err = createSegment(fs, dir, rec.next)
		if err != nil {
			return nil, err
		}
		rec.segs = append(rec.segs, segment{first: rec.next, path: path})
		size = SegmentHeaderSize
	} else {
		path = rec.segs[len(rec.segs)-1].path
		f, err = fs.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("wal: open segment: %w", err)
		}
		// Appends continue after the last record, over the zeros of a
		// preallocated segment if it was one.
		end, err := f.Seek(0, io.SeekEnd)
		if err == nil {
			size, err = f.Seek(rec.end, io.SeekStart)
		}
		if err != nil {
			return nil, fmt.Errorf("wal: seek %s: %w", path, errors.Join(err, f.Close()))
		}
		prealloc = end > size
		// Whatever recovery found may only be in the page cache (the
		// previous process may have died before an fsync); make it
		// durable before anything is acknowledged on top of it.
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("wal: fsync %s: %w", path, errors.Join(err, f.Close()))
		}
	}
	l := newLog(opts, lock, rec)
	l.pending = make([]byte, 0, initialBuffer)
	l.spare = make([]byte, 0, initialBuffer)
	l.projSize = size
	l.f, l.fpath, l.fSize, l.fPrealloc = f, path, size, prealloc
	l.fWritten, l.fSynced = rec.last, rec.last
	if !opts.NoPreallocate && l.segSize >= minPrealloc {
		l.prep = &preparer{req: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
		l.made = make(chan struct{}, 1)
	}
	return l, nil
}

// newLog returns a Log over what recovery found, ready but for the
// active segment and the flush buffers.
func newLog(opts Options, lock io.Closer, rec recovered) *Log {
	l := &Log{
		fs:           opts.FS,
		dir:          opts.Dir,
		segSize:      opts.SegmentSize,
		logger:       opts.Logger,
		lock:         lock,
		report:       rec.report,
		check:        opts.CheckRecord,
		nextLSN:      rec.next,
		mode:         opts.Sync,
		interval:     opts.SyncInterval,
		inflightLast: rec.last,
		pendingCh:    make(chan struct{}),
		segs:         rec.segs,
		wake:         make(chan struct{}, 1),
		syncReq:      make(chan chan error),
		closeCh:      make(chan struct{}),
		doneCh:       make(chan struct{}),
	}
	l.spaceCond.L = &l.mu
	l.setInflight(closedChan)
	l.acked.Store(rec.last)
	l.written.Store(rec.last)
	l.synced.Store(rec.last)
	return l
}

// Append adds a record of type typ (which must not be 0) with a copy of
// payload to the log and returns its LSN. It never waits for the disk: the
// record is encoded into the pending buffer and the flusher is signalled.
// Append blocks only as backpressure, while more than 64 MiB of records are
// waiting to be written. Use WaitDurable to wait for the record to become
// durable. After a failure Append returns the sticky error (see Err); after
// Close it returns ErrClosed. Once the log has assigned MaxLSN, Append
// appends nothing and returns an error matching ErrLSNExhausted.
func (l *Log) Append(typ uint8, payload []byte) (uint64, error) {
	if typ == 0 {
		return 0, errors.New("wal: Append: record type 0 is reserved")
	}
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("wal: Append: payload of %d bytes exceeds MaxPayload", len(payload))
	}
	l.mu.Lock()
	for {
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return 0, err
		}
		if l.closing {
			l.mu.Unlock()
			return 0, ErrClosed
		}
		if len(l.pending) < maxPending {
			break
		}
		l.spaceWaiters++
		l.spaceCond.Wait()
		l.spaceWaiters--
	}
	lsn := l.nextLSN
	if lsn > MaxLSN {
		l.mu.Unlock()
		return 0, fmt.Errorf("wal: Append: LSN %d is the last a log assigns: %w", uint64(MaxLSN), ErrLSNExhausted)
	}
	fsz := frameSize(len(payload))
	if l.projSize+fsz > l.segSize && l.projSize > SegmentHeaderSize {
		l.pendRot = append(l.pendRot, rotation{off: len(l.pending), lsn: lsn})
		l.projSize = SegmentHeaderSize
	}
	l.projSize += fsz
	signal := len(l.pending) == 0
	l.pending = AppendRecord(l.pending, lsn, typ, payload)
	l.nextLSN++
	l.appends++
	l.appendBytes += uint64(len(payload))
	l.mu.Unlock()
	if signal {
		l.signal()
	}
	return lsn, nil
}

// signal wakes the flusher without blocking.
func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// WaitDurable returns nil once the record with LSN lsn is durable according
// to the sync policy in force when its batch was flushed: fsynced under
// SyncAlways, written to the operating system under SyncInterval and
// SyncNever. It returns the sticky error if the log failed before that, or
// ErrClosed if the log was closed without the record becoming durable. A
// record acknowledged before a failure stays acknowledged.
func (l *Log) WaitDurable(lsn uint64) error {
	for {
		if l.acked.Load() >= lsn {
			return nil
		}
		l.mu.Lock()
		if l.acked.Load() >= lsn {
			l.mu.Unlock()
			return nil
		}
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return err
		}
		if l.exited {
			l.mu.Unlock()
			return ErrClosed
		}
		if lsn >= l.nextLSN {
			last := l.nextLSN - 1
			l.mu.Unlock()
			return fmt.Errorf("wal: WaitDurable(%d): LSN not assigned yet (last is %d)", lsn, last)
		}
		ch := l.pendingCh
		if lsn <= l.inflightLast {
			ch = l.inflightCh
		}
		l.mu.Unlock()
		<-ch
	}
}

// Replay calls fn, in LSN order, for every record in the log with
// LSN >= fromLSN that had been written when Replay started. The payload is
// only valid during the call. Records are read back from the segment files
// and verified again; damage yields a *CorruptError. Records removed by
// TruncateBefore are skipped silently (see FirstLSN). An error from fn stops
// the replay and is returned as is. fn must not call TruncateBefore.
func (l *Log) Replay(fromLSN uint64, fn func(lsn uint64, typ uint8, payload []byte) error) error {
	l.replayMu.RLock()
	defer l.replayMu.RUnlock()
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	segs := slices.Clone(l.segs)
	limit := l.written.Load()
	l.mu.Unlock()
	fromLSN = max(fromLSN, 1)
	if fromLSN > limit {
		return nil
	}
	start := 0
	for i, s := range segs {
		if s.first <= fromLSN {
			start = i
		}
	}
	expected := segs[start].first
	for _, seg := range segs[start:] {
		if seg.first > limit {
			break
		}
		if seg.first != expected {
			return misnamed(seg, expected)
		}
		res, err := scanSegment(l.fs, seg, limit, nil, func(r Record) error {
			if r.LSN < fromLSN {
				return nil
			}
			return fn(r.LSN, r.Type, r.Payload)
		})
		if err != nil {
			return err
		}
		if res.corrupt != nil {
			return res.corrupt
		}
		if res.last >= limit {
			return nil
		}
		if res.torn {
			return tornInside(seg, res, "damaged record before the end of the log")
		}
		expected = res.last + 1
	}
	return &CorruptError{File: segs[len(segs)-1].path, LSN: expected,
		Reason: fmt.Sprintf("log ends before LSN %d", limit)}
}

// TruncateBefore removes the segments all of whose records have LSN < lsn,
// oldest first, then fsyncs the directory. It never removes the active
// (last) segment, so records with LSN >= lsn are always kept.
func (l *Log) TruncateBefore(lsn uint64) error {
	l.replayMu.Lock()
	defer l.replayMu.Unlock()
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	segs := slices.Clone(l.segs)
	l.mu.Unlock()
	n := 0
	for n < len(segs)-1 && segs[n+1].first <= lsn {
		n++
	}
	if n == 0 {
		return nil
	}
	var err error
	removed := 0
	for ; removed < n; removed++ {
		if err = l.fs.Remove(segs[removed].path); err != nil {
			err = fmt.Errorf("wal: truncate: %w", err)
			break
		}
	}
	l.mu.Lock()
	l.segs = l.segs[removed:]
	l.mu.Unlock()
	if removed > 0 {
		if serr := l.fs.SyncDir(l.dir); serr != nil {
			err = errors.Join(err, fmt.Errorf("wal: truncate: sync %s: %w", l.dir, serr))
		}
	}
	return err
}

// FirstLSN returns the first LSN of the oldest segment still present. Every
// record from FirstLSN to LastLSN is in the log.
func (l *Log) FirstLSN() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[0].first
}

// LastLSN returns the LSN of the last appended record (0 if none).
func (l *Log) LastLSN() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextLSN - 1
}

// Appended returns the LSN of the last record appended and the payload
// bytes appended since Open, read together.
func (l *Log) Appended() (last, bytes uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextLSN - 1, l.appendBytes
}

// DurableLSN returns the highest LSN known to be written and fsynced.
// It never covers data that was not successfully written and synced.
func (l *Log) DurableLSN() uint64 { return l.synced.Load() }

// WrittenLSN returns the highest LSN successfully written to the operating
// system (possibly not yet fsynced).
func (l *Log) WrittenLSN() uint64 { return l.written.Load() }

// SetSync changes the sync policy of a live log. It applies to batches
// flushed after the call. An interval <= 0 means DefaultSyncInterval.
func (l *Log) SetSync(mode SyncMode, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	l.mu.Lock()
	l.mode = mode
	l.interval = interval
	l.mu.Unlock()
	l.signal()
}

// Sync writes and fsyncs every record appended before the call, whatever
// the sync policy, and returns once they are durable (or the sticky
// error, or ErrClosed). A checkpoint uses it so that no snapshot ever
// covers LSNs the log could still lose.
func (l *Log) Sync() error {
	if l.readOnly {
		return ErrReadOnly
	}
	reply := make(chan error, 1)
	select {
	case l.syncReq <- reply:
		return <-reply
	case <-l.doneCh:
		return ErrClosed
	}
}

// Err returns the sticky error that stopped the log, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

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
		Appends:                l.appends,
		AppendedBytes:          l.appendBytes,
		Segments:               len(l.segs),
		FirstLSN:               l.segs[0].first,
		LastLSN:                l.nextLSN - 1,
		TornBytesDropped:       l.report.TornBytes,
		RepairedBytesDropped:   l.report.BytesDropped,
		RepairedRecordsDropped: l.report.RecordsDropped,
	}
	l.mu.Unlock()
	s.Writes = l.writes.Load()
	s.WrittenBytes = l.bytesWritten.Load()
	s.Fsyncs = l.fsyncs.Load()
	s.PreallocatedSegments = l.preallocated.Load()
	for i := range s.RecordsPerFsync {
		s.RecordsPerFsync[i] = l.perFsync[i].Load()
	}
	s.WrittenLSN = l.written.Load()
	s.DurableLSN = l.synced.Load()
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

// Close writes and fsyncs everything appended so far (whatever the sync
// policy), stops the flusher, closes the active segment and releases the
// directory lock. It returns the sticky error if the log had failed, and any
// error from the final fsync or close. Later calls return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closing = true
	l.spaceCond.Broadcast()
	l.mu.Unlock()
	close(l.closeCh)
	<-l.doneCh
	err := l.closeErr
	if l.prep != nil {
		close(l.prep.stop)
		<-l.prep.done
		err = errors.Join(err, l.prep.err)
	}
	if lerr := l.lock.Close(); lerr != nil {
		err = errors.Join(err, fmt.Errorf("wal: release lock: %w", lerr))
	}
	return err
}

func (l *Log) countFsync(records uint64) {
	l.fsyncs.Add(1)
	if records > 0 {
		l.perFsync[min(bits.Len64(records)-1, histBuckets-1)].Add(1)
	}
}

// InFlight returns a channel that is closed once the batch the flusher is
// writing (and, under SyncAlways, fsyncing) now has been acknowledged, or
// an already closed channel when no batch is in flight. Background work
// that competes with the flusher for CPU, such as a checkpoint's encoder,
// waits on it to leave the flusher's writers a processor while it blocks.
func (l *Log) InFlight() <-chan struct{} { return *l.inflightPub.Load() }

// setInflight sets inflightCh and its lock-free copy; l.mu must be held.
func (l *Log) setInflight(ch chan struct{}) {
	l.inflightCh = ch
	l.inflightPub.Store(&ch)
}

// openReadOnly opens the log in opts.Dir as Options.ReadOnly says.
func openReadOnly(opts Options) (*Log, error) {
	fs, dir := opts.FS, opts.Dir
	if opts.Repair {
		return nil, fmt.Errorf("%w: ReadOnly with Repair", ErrInvalidOptions)
	}
	if _, err := fs.Stat(dir); err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	rec, err := recoverLog(fs, dir, recoverOptions{readOnly: true, check: opts.CheckRecord, logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	if len(rec.segs) == 0 {
		// The segment a writer would create; nothing reads it, since
		// the log holds no record.
		rec.segs = []segment{{first: rec.next, path: filepath.Join(dir, segmentName(rec.next))}}
	}
	l := newLog(opts, io.NopCloser(nil), rec)
	l.readOnly, l.err, l.exited = true, ErrReadOnly, true
	close(l.doneCh) // no flusher
	return l, nil
}
