package maintenance

import (
	"errors"
	"fmt"
	"time"
)

// SyncMode is the write-ahead log's durability policy. The store maps it
// onto its own sync modes.
type SyncMode uint8

const (
	SyncAlways   SyncMode = iota // acknowledge after fsync (group commit)
	SyncInterval                 // acknowledge after write; fsync every SyncInterval
	SyncNever                    // acknowledge after write; the OS decides
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
	return fmt.Sprintf("SyncMode(%d)", uint8(m))
}

// ErrInvalidConfig is returned (wrapped) by Validate and Update.
var ErrInvalidConfig = errors.New("maintenance: invalid config")

// Config is the immutable configuration of a store's background work.
// Copy it, change the copy and hand it to Holder.Update; never share a
// pointer to one. A zero duration disables the worker it drives.
type Config struct {
	// CheckpointWALBytes starts a checkpoint once the WAL written since
	// the last snapshot exceeds this many bytes. Default 64 MiB; 0
	// disables the size trigger; otherwise at least 1 MiB.
	CheckpointWALBytes int64
	// CheckpointInterval starts a checkpoint this long after the last one
	// if anything was written. Default 10m; 0 disables; otherwise >= 1s.
	CheckpointInterval time.Duration
	// CheckpointPace bounds, in bytes per second, how fast a checkpoint
	// writes its snapshot while writes are arriving, so that the WAL's
	// fsyncs do not queue behind the snapshot's write-back on the same
	// disk. A checkpoint of an idle store runs at full speed. Default
	// 64 MiB/s; 0 never paces; otherwise at least 1 MiB/s.
	CheckpointPace int64
	// SnapshotsKept is how many snapshots a checkpoint keeps. Default 2;
	// range 1..100.
	SnapshotsKept int
	// Sync is the WAL durability policy. Default SyncAlways.
	Sync SyncMode
	// SyncInterval is the fsync period under SyncInterval. Default 100ms;
	// range 1ms..1h.
	SyncInterval time.Duration
	// InlineValues is the largest value set kept as an inline sorted
	// slice; larger sets use a copy-on-write B-tree. Default 32; range
	// 1..4096. Applies to sets as they change and when compacted.
	InlineValues int
	// CompactInterval is how often the compactor converts shrunken value
	// sets back to inline slices and shrinks shard maps. Default 1m; 0
	// disables; otherwise >= 10ms.
	CompactInterval time.Duration
	// GCInterval is how often obsolete files (temporary files, snapshots
	// beyond SnapshotsKept, WAL segments below the oldest kept snapshot)
	// are removed. Default 5m; 0 disables; otherwise >= 10ms.
	GCInterval time.Duration
	// ScrubInterval is how often closed WAL segments and snapshots are
	// re-read and their checksums verified. Default 1h; 0 disables;
	// otherwise >= 10ms.
	ScrubInterval time.Duration
	// AuditInterval is how often each shard's map and B-tree are checked
	// against each other (and the B-tree rebuilt on a mismatch). Default
	// 10m; 0 disables; otherwise >= 10ms.
	AuditInterval time.Duration
	// Parallelism bounds how many shards one worker processes at once.
	// Default 2; range 1..256.
	Parallelism int
	// WorkerDuty is the share of wall-clock time the periodic workers
	// together may spend running, averaged over time: 0.05 lets them use
	// a twentieth of one CPU. Work beyond it waits (a periodic run starts
	// late; a long pass pauses between steps), so aggressive intervals
	// cannot crowd out reads and writes. A long checkpoint thus also
	// delays the next runs of the other workers (the time it sleeps to
	// keep to CheckpointPace does not count). Triggered runs are
	// neither paced nor counted. Default 0.05;
	// range 0.001..1, where 1 turns pacing off.
	WorkerDuty float64
}

// Default returns the default configuration.
func Default() Config {
	return Config{
		CheckpointWALBytes: 64 << 20,
		CheckpointInterval: 10 * time.Minute,
		CheckpointPace:     64 << 20,
		SnapshotsKept:      2,
		Sync:               SyncAlways,
		SyncInterval:       100 * time.Millisecond,
		InlineValues:       32,
		CompactInterval:    time.Minute,
		GCInterval:         5 * time.Minute,
		ScrubInterval:      time.Hour,
		AuditInterval:      10 * time.Minute,
		Parallelism:        2,
		WorkerDuty:         0.05,
	}
}

// minWorkerInterval is the shortest interval a periodic worker accepts.
const minWorkerInterval = 10 * time.Millisecond

// Validate reports the first field outside its documented range.
func (c Config) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s = %v, want %s", ErrInvalidConfig, field, v, want)
	}
	switch {
	case c.CheckpointWALBytes < 0 || (c.CheckpointWALBytes > 0 && c.CheckpointWALBytes < 1<<20):
		return bad("CheckpointWALBytes", c.CheckpointWALBytes, "0 or >= 1 MiB")
	case c.CheckpointInterval < 0 || (c.CheckpointInterval > 0 && c.CheckpointInterval < time.Second):
		return bad("CheckpointInterval", c.CheckpointInterval, "0 or >= 1s")
	case c.CheckpointPace < 0 || (c.CheckpointPace > 0 && c.CheckpointPace < 1<<20):
		return bad("CheckpointPace", c.CheckpointPace, "0 or >= 1 MiB/s")
	case c.SnapshotsKept < 1 || c.SnapshotsKept > 100:
		return bad("SnapshotsKept", c.SnapshotsKept, "1..100")
	case c.Sync > SyncNever:
		return bad("Sync", c.Sync, "always, interval or never")
	case c.SyncInterval < time.Millisecond || c.SyncInterval > time.Hour:
		return bad("SyncInterval", c.SyncInterval, "1ms..1h")
	case c.InlineValues < 1 || c.InlineValues > 4096:
		return bad("InlineValues", c.InlineValues, "1..4096")
	case c.Parallelism < 1 || c.Parallelism > 256:
		return bad("Parallelism", c.Parallelism, "1..256")
	case !(c.WorkerDuty >= 0.001 && c.WorkerDuty <= 1): // also rejects NaN
		return bad("WorkerDuty", c.WorkerDuty, "0.001..1")
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"CompactInterval", c.CompactInterval},
		{"GCInterval", c.GCInterval},
		{"ScrubInterval", c.ScrubInterval},
		{"AuditInterval", c.AuditInterval},
	} {
		if f.d < 0 || (f.d > 0 && f.d < minWorkerInterval) {
			return bad(f.name, f.d, "0 or >= 10ms")
		}
	}
	return nil
}
