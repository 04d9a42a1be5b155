package store

import (
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// MaxShards is the largest shard count Options accept.
const MaxShards = 1 << 16

// Options configure Open: what is fixed for the life of an open store,
// and the initial Config, which Store.UpdateConfig may change later. Each
// setting lives in exactly one place. The zero value is a valid
// configuration.
type Options struct {
	// Shards is the number of shards. 0 picks DefaultShards() (32 per
	// GOMAXPROCS, rounded up to a power of two). Any other
	// value is rounded up to the next power of two (so 3 becomes 4);
	// valid range 0..MaxShards.
	Shards int

	// InMemory keeps everything in memory and writes nothing to disk. A
	// store opened with an empty directory is always in memory.
	InMemory bool

	// SegmentSize is the WAL segment size in bytes; 0 means
	// wal.DefaultSegmentSize (64 MiB); valid range
	// wal.MinSegmentSize..wal.MaxSegmentSize (4 KiB..4 GiB).
	// Below a page the log rotates every few records, each rotation
	// costing a file and four fsyncs (at 1 byte, one file per record);
	// above 4 GiB the preallocated spare alone would take that much disk.
	// The lower bound is far below what production wants (keep the
	// default) so that tests can exercise rotation with a few records.
	SegmentSize int64

	// NoPreallocate turns off WAL segment preallocation: by default a
	// background goroutine zero-fills the next segment so that syncs
	// overwrite allocated blocks, which makes each SyncAlways group commit
	// cheaper on ext4 and XFS at the cost of writing the WAL twice. Set it
	// on copy-on-write filesystems (btrfs, ZFS), where it gains nothing.
	// Preallocation gives way to records when space runs short: it never
	// turns the store read-only by itself.
	NoPreallocate bool

	// Repair makes Open repair the directory (see Repair) instead of
	// failing with ErrCorrupt: snapshots that do not validate are moved
	// aside, and the WAL keeps the intact records that follow the newest
	// valid snapshot. What was done is logged and reported in
	// RecoveryStats.Repair. A torn final write is always cut, with or
	// without Repair.
	Repair bool

	// ReadOnly opens an existing store directory for reading only:
	// nothing on disk is created or changed (a torn final write is left
	// in place and not read, leftover temporary files stay), a path that
	// is not a store directory fails with ErrNotStore, every write,
	// Import and Checkpoint return ErrReadOnly, and no background worker
	// touches the disk. The directory lock is taken if the lock file
	// exists and the filesystem is writable, so a store open elsewhere
	// fails with ErrLocked. Not with Repair or InMemory.
	ReadOnly bool

	// Config is the initial configuration: sync policy, inline threshold,
	// snapshot retention, checkpoint triggers and the background workers.
	// nil means DefaultConfig(). A non-nil Config is used exactly as
	// given, every field validated and none replaced by its default, so
	// start from DefaultConfig() and change what you need:
	//
	//	c := store.DefaultConfig()
	//	c.Sync = store.SyncNever
	//	s, err := store.Open(dir, store.Options{Config: &c})
	Config *Config

	// FS is the filesystem a persistent store uses; nil means the
	// operating system's. Tests inject faults through it.
	FS vfs.FS

	// Logger receives operational messages. nil discards them.
	Logger *slog.Logger

	// Clock drives the maintenance workers' timers; nil means real time.
	// Tests substitute a fake.
	Clock maintenance.Clock
}

// DefaultShards returns the shard count used when Options.Shards is 0:
// 32 shards per GOMAXPROCS, rounded up to a power of two (64 on two
// cores). Smaller shards keep each shard's B-tree and map shallow and
// cache-friendly, which makes inserting new keys cheaper, while lookups
// cost the same at any count; BENCHMARKS.md has the sweep that chose the
// factor.
func DefaultShards() int { return ceilPow2(32 * runtime.GOMAXPROCS(0)) }

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// normalize validates o and fills in defaults.
func (o Options) normalize() (Options, error) {
	switch {
	case o.Shards < 0 || o.Shards > MaxShards:
		return o, fmt.Errorf("%w: Shards %d outside 0..%d", ErrInvalidOptions, o.Shards, MaxShards)
	case o.SegmentSize != 0 && (o.SegmentSize < wal.MinSegmentSize || o.SegmentSize > wal.MaxSegmentSize):
		return o, fmt.Errorf("%w: SegmentSize %d outside %d..%d", ErrInvalidOptions,
			o.SegmentSize, wal.MinSegmentSize, wal.MaxSegmentSize)
	case o.ReadOnly && (o.Repair || o.InMemory):
		return o, fmt.Errorf("%w: ReadOnly with Repair or InMemory", ErrInvalidOptions)
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards()
	}
	o.Shards = ceilPow2(o.Shards)
	if err := o.initialConfig().Validate(); err != nil {
		return o, err
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// initialConfig is the Config a store opened with o starts with.
func (o Options) initialConfig() Config {
	if o.Config == nil {
		return DefaultConfig()
	}
	return *o.Config
}
