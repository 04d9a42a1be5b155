package store

import (
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"
	"time"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// SyncMode says when a write to a persistent store is acknowledged.
type SyncMode = wal.SyncMode

const (
	// SyncAlways (the default) returns from a write only after its WAL
	// record is written and fsynced. Concurrent writers share fsyncs
	// (group commit). Nothing acknowledged is lost, even by a power cut.
	SyncAlways = wal.SyncAlways
	// SyncInterval returns once the record is written to the operating
	// system and fsyncs every Options.SyncInterval: a process crash loses
	// nothing acknowledged, a machine crash at most about one interval.
	SyncInterval = wal.SyncInterval
	// SyncNever returns once the record is written to the operating
	// system and leaves fsync to the OS (and to segment rotation and
	// Close): a process crash loses nothing acknowledged, a machine crash
	// may lose whatever the OS had not written back.
	SyncNever = wal.SyncNever
)

// MaxShards is the largest shard count Options accept.
const MaxShards = 1 << 16

// Options configure Open. The zero value is a valid configuration.
type Options struct {
	// Shards is the number of shards. 0 picks DefaultShards() (32 per
	// GOMAXPROCS, rounded up to a power of two). Any other
	// value is rounded up to the next power of two (so 3 becomes 4);
	// valid range 0..MaxShards.
	Shards int

	// InMemory keeps everything in memory and writes nothing to disk. A
	// store opened with an empty directory is always in memory.
	InMemory bool

	// InlineValues is the largest value set kept as a sorted inline slice;
	// larger sets use a copy-on-write B-tree. 0 means the default (32);
	// valid range 1..4096.
	InlineValues int

	// Sync is the durability policy of a persistent store (default
	// SyncAlways). Ignored by in-memory stores.
	Sync SyncMode

	// SyncInterval is the fsync period under SyncInterval; 0 means 100ms.
	SyncInterval time.Duration

	// SegmentSize is the WAL segment size in bytes; 0 means 64 MiB.
	SegmentSize int64

	// NoPreallocate turns off WAL segment preallocation: by default a
	// background goroutine zero-fills the next segment so that syncs
	// overwrite allocated blocks, which makes each SyncAlways group commit
	// cheaper on ext4 and XFS at the cost of writing the WAL twice. Set it
	// on copy-on-write filesystems (btrfs, ZFS), where it gains nothing.
	NoPreallocate bool

	// SnapshotsKept is how many snapshots Checkpoint keeps (the WAL is
	// kept back to the oldest of them). 0 means 2; valid range 0..100.
	SnapshotsKept int

	// Repair makes Open cut the WAL at the first damaged record instead of
	// failing with ErrCorrupt. What was dropped is logged. A torn final
	// write is always cut, with or without Repair.
	Repair bool

	// Config is the initial maintenance configuration (see package
	// maintenance and Store.UpdateConfig); nil means maintenance.Default().
	// Sync, SyncInterval, SnapshotsKept and InlineValues, when set, take
	// precedence over the matching fields.
	Config *maintenance.Config

	// Clock drives the maintenance workers' timers; nil means real time.
	// Tests substitute a fake.
	Clock maintenance.Clock

	// FS is the filesystem a persistent store uses; nil means the
	// operating system's. Tests inject faults through it.
	FS vfs.FS

	// Logger receives operational messages. nil discards them.
	Logger *slog.Logger
}

// DefaultShards returns the shard count used when Options.Shards is 0:
// 32 shards per GOMAXPROCS, rounded up to a power of two (64 on two
// cores). Smaller shards keep each shard's B-tree and map shallow and
// cache-friendly: on the two-core reference machine, inserting 1M new keys
// cost 1.78 us per insert with 8 shards and 1.24 us with 64 (BenchmarkInsertNew,
// median of 3), while lookups cost the same at any count. See
// BENCHMARKS.md for the sweep.
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
	case o.InlineValues < 0 || o.InlineValues > shard.MaxInlineMax:
		return o, fmt.Errorf("%w: InlineValues %d outside 0..%d", ErrInvalidOptions, o.InlineValues, shard.MaxInlineMax)
	case o.Sync < SyncAlways || o.Sync > SyncNever:
		return o, fmt.Errorf("%w: unknown Sync mode %d", ErrInvalidOptions, int(o.Sync))
	case o.SyncInterval < 0:
		return o, fmt.Errorf("%w: negative SyncInterval %v", ErrInvalidOptions, o.SyncInterval)
	case o.SnapshotsKept < 0 || o.SnapshotsKept > 100:
		return o, fmt.Errorf("%w: SnapshotsKept %d outside 0..100", ErrInvalidOptions, o.SnapshotsKept)
	case o.SegmentSize < 0:
		return o, fmt.Errorf("%w: negative SegmentSize %d", ErrInvalidOptions, o.SegmentSize)
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards()
	}
	o.Shards = ceilPow2(o.Shards)
	if err := configFromOptions(o).Validate(); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
