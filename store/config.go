package store

import (
	"fmt"
	"time"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/wal"
)

// SyncMode says when a write to a persistent store is acknowledged. It is
// the write-ahead log's type, wal.SyncMode.
type SyncMode = wal.SyncMode

const (
	// SyncAlways (the default) returns from a write only after its WAL
	// record is written and fsynced. Concurrent writers share fsyncs
	// (group commit). Nothing acknowledged is lost, even by a power cut.
	SyncAlways = wal.SyncAlways
	// SyncInterval returns once the record is written to the operating
	// system and fsyncs every Config.SyncInterval: a process crash loses
	// nothing acknowledged, a machine crash at most about one interval.
	SyncInterval = wal.SyncInterval
	// SyncNever returns once the record is written to the operating
	// system and leaves fsync to the OS (and to segment rotation and
	// Close): a process crash loses nothing acknowledged, a machine crash
	// may lose whatever the OS had not written back.
	SyncNever = wal.SyncNever
)

// Config is the part of a store's configuration that may change while it
// runs: the sync policy, the inline threshold, snapshot retention and the
// background workers. It is an immutable value: Open takes the initial one
// from Options.Config, Store.Config returns the one in force, and
// Store.UpdateConfig swaps in a changed copy atomically. Every field is
// taken as given, zero included (a zero duration turns off the worker it
// drives; the zero Sync is SyncAlways); DefaultConfig returns the
// defaults, and Validate the documented ranges.
type Config struct {
	// Sync is the durability policy of a persistent store. Default
	// SyncAlways (the zero value). Ignored by in-memory stores.
	Sync SyncMode
	// SyncInterval is the fsync period under SyncInterval. Default
	// wal.DefaultSyncInterval (100ms); range 1ms..1h.
	SyncInterval time.Duration
	// InlineValues is the largest value set kept as a sorted inline
	// slice; larger sets use a copy-on-write B-tree. Default
	// shard.DefaultInlineMax (32); range 1..shard.MaxInlineMax (4096).
	// Applies to sets as they change and when compacted.
	InlineValues int
	// SnapshotsKept is how many snapshots a checkpoint keeps (the WAL is
	// kept back to the oldest of them). Default 2; range 1..100.
	SnapshotsKept int
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
	// Parallelism bounds how many shards Audit processes at once.
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
	// range maintenance.MinDuty (0.001)..1, where 1 turns pacing off.
	WorkerDuty float64
}

// DefaultConfig returns the default configuration, the one Open uses when
// Options.Config is nil.
func DefaultConfig() Config {
	return Config{
		Sync:               SyncAlways,
		SyncInterval:       wal.DefaultSyncInterval,
		InlineValues:       shard.DefaultInlineMax,
		SnapshotsKept:      2,
		CheckpointWALBytes: 64 << 20,
		CheckpointInterval: 10 * time.Minute,
		CheckpointPace:     64 << 20,
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

// Validate reports the first field outside its documented range, with an
// error wrapping ErrInvalidOptions.
func (c Config) Validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: Config.%s = %v, want %s", ErrInvalidOptions, field, v, want)
	}
	switch {
	case c.Sync < SyncAlways || c.Sync > SyncNever:
		return bad("Sync", c.Sync, "always, interval or never")
	case c.SyncInterval < time.Millisecond || c.SyncInterval > time.Hour:
		return bad("SyncInterval", c.SyncInterval, "1ms..1h")
	case c.InlineValues < 1 || c.InlineValues > shard.MaxInlineMax:
		return bad("InlineValues", c.InlineValues, fmt.Sprintf("1..%d", shard.MaxInlineMax))
	case c.SnapshotsKept < 1 || c.SnapshotsKept > 100:
		return bad("SnapshotsKept", c.SnapshotsKept, "1..100")
	case c.CheckpointWALBytes < 0 || (c.CheckpointWALBytes > 0 && c.CheckpointWALBytes < 1<<20):
		return bad("CheckpointWALBytes", c.CheckpointWALBytes, "0 or >= 1 MiB")
	case c.CheckpointInterval < 0 || (c.CheckpointInterval > 0 && c.CheckpointInterval < time.Second):
		return bad("CheckpointInterval", c.CheckpointInterval, "0 or >= 1s")
	case c.CheckpointPace < 0 || (c.CheckpointPace > 0 && c.CheckpointPace < 1<<20):
		return bad("CheckpointPace", c.CheckpointPace, "0 or >= 1 MiB/s")
	case c.Parallelism < 1 || c.Parallelism > 256:
		return bad("Parallelism", c.Parallelism, "1..256")
	case !(c.WorkerDuty >= maintenance.MinDuty && c.WorkerDuty <= 1): // also rejects NaN
		return bad("WorkerDuty", c.WorkerDuty, fmt.Sprintf("%v..1", maintenance.MinDuty))
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

// Config returns the configuration in force.
func (s *Store) Config() Config { return s.cfg.Load() }

// UpdateConfig replaces the configuration with fn(current), validated and
// swapped atomically (concurrent updates never lose one another; fn may
// run more than once, so it must be a pure function of its argument). The
// WAL sync policy, the inline threshold, retention and every worker
// follow the new value at once, without a restart. An invalid result is
// rejected with an error wrapping ErrInvalidOptions and the old value
// stays.
func (s *Store) UpdateConfig(fn func(Config) Config) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if _, err := s.cfg.Update(fn); err != nil {
		return err
	}
	s.applyConfig()
	return nil
}

// applyConfig pushes the current config into the WAL and the shards. It
// always applies the latest value, so racing updates end in the newest.
func (s *Store) applyConfig() {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	c := s.cfg.Load()
	if s.wal != nil {
		s.wal.SetSync(c.Sync, c.SyncInterval)
	}
	for _, sh := range s.shards {
		setInlineMax(sh, c.InlineValues)
	}
	s.triples.SetInlineMax(tripleInline * c.InlineValues)
}

// setInlineMax sets sh's inline threshold under its lock.
func setInlineMax(sh *shard.Shard, n int) {
	sh.Lock()
	defer sh.Unlock()
	sh.SetInlineMax(n)
}
