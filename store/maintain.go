package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/snapshot"
)

// WorkerName names a background worker, for TriggerWorker; it is also the
// Name of the worker's entry in Stats().Workers.
type WorkerName string

// The background workers.
const (
	WorkerCheckpoint WorkerName = "checkpoint"
	WorkerScrub      WorkerName = "scrub"
	WorkerCompact    WorkerName = "compact"
	WorkerAudit      WorkerName = "audit"
	WorkerGC         WorkerName = "gc"
)

// checkpointPoll is how often the checkpointer looks at the WAL size when
// the size trigger is on.
const checkpointPoll = time.Second

// maintStats are the maintenance workers' results beyond run counts.
type maintStats struct {
	scrubRuns       atomic.Int64
	scrubCorrupt    atomic.Int64 // scrub passes that found damage
	scrubRecords    atomic.Int64 // records verified by the last pass
	scrubSnapshots  atomic.Int64 // snapshots verified by the last pass
	auditRepairs    atomic.Int64 // shard indexes rebuilt
	auditMismatches atomic.Int64
	compacted       atomic.Int64 // records rewritten by the compactor
	gcRemoved       atomic.Int64 // files removed by GC
	scrubByType     atomic.Pointer[map[uint8]int64]
}

// TriggerWorker runs the named maintenance worker now and returns its
// result. Names: WorkerCheckpoint, WorkerScrub, WorkerCompact, WorkerAudit,
// WorkerGC (an in-memory store has only compact and audit).
func (s *Store) TriggerWorker(ctx context.Context, name WorkerName) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.sched.Trigger(ctx, string(name))
}

// startMaintenance registers and starts the background workers.
func (s *Store) startMaintenance() error {
	s.sched = maintenance.NewScheduler(s.cfg, maintenance.Options{Logger: s.opts.Logger, Clock: s.opts.Clock,
		Duty: func() float64 { return s.cfg.Load().WorkerDuty }})
	workers := []maintenance.Worker[Config]{
		{Name: string(WorkerCompact), Interval: func(c Config) time.Duration { return c.CompactInterval }, Run: s.runCompact},
		{Name: string(WorkerAudit), Interval: func(c Config) time.Duration { return c.AuditInterval }, Run: s.runAudit},
	}
	if s.wal != nil && !s.opts.ReadOnly {
		workers = append(workers,
			maintenance.Worker[Config]{Name: string(WorkerCheckpoint), Interval: checkpointInterval, Run: s.runCheckpoint},
			maintenance.Worker[Config]{Name: string(WorkerScrub), Interval: func(c Config) time.Duration { return c.ScrubInterval }, Run: s.runScrub},
			maintenance.Worker[Config]{Name: string(WorkerGC), Interval: func(c Config) time.Duration { return c.GCInterval }, Run: s.runGC},
		)
	}
	for _, w := range workers {
		if err := s.sched.Add(w); err != nil {
			return err
		}
	}
	s.sched.Start()
	return nil
}

// checkpointInterval polls the WAL size when the size trigger is on, and
// otherwise waits for the time trigger.
func checkpointInterval(c Config) time.Duration {
	switch {
	case c.CheckpointWALBytes > 0 && c.CheckpointInterval > 0:
		return min(checkpointPoll, c.CheckpointInterval)
	case c.CheckpointWALBytes > 0:
		return checkpointPoll
	}
	return c.CheckpointInterval
}

// walSinceSnapshot is how many WAL payload bytes were logged since the
// newest snapshot (counting what recovery replayed).
func (s *Store) walSinceSnapshot() int64 {
	return int64(s.wal.Stats().AppendedBytes) - s.ckpt.walAt.Load()
}

// runCheckpoint checkpoints when the WAL has grown past
// CheckpointWALBytes since the newest snapshot, or CheckpointInterval has
// passed since the last checkpoint and something was written. (To
// checkpoint unconditionally, call Store.Checkpoint.)
func (s *Store) runCheckpoint(ctx context.Context, c Config, p *maintenance.Pacer) error {
	since := s.walSinceSnapshot()
	due := since > 0 && c.CheckpointInterval > 0 &&
		time.Since(time.Unix(0, s.ckpt.lastAt.Load())) >= c.CheckpointInterval
	if c.CheckpointWALBytes > 0 && since >= c.CheckpointWALBytes {
		due = true
	}
	if !due {
		return nil
	}
	return s.checkpoint(ctx, p, false)
}

// scrubEntriesStep is how many snapshot entries the scrub verifies between
// pauses. Like the shards' audit and compaction steps (1024 entries per
// lock hold), it keeps a pass over a large store from holding a CPU for
// long, so the workers together keep to Config.WorkerDuty.
const scrubEntriesStep = 4096

// runScrub verifies every closed WAL segment, one per step, then every
// snapshot, and publishes the pass's totals. Damage ends the pass: it is
// counted and logged, and writes go on.
func (s *Store) runScrub(ctx context.Context, _ Config, p *maintenance.Pacer) error {
	err := s.scrubPass(ctx, p)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.maint.scrubCorrupt.Add(1) // the scheduler logs the error
	}
	return err
}

func (s *Store) scrubPass(ctx context.Context, p *maintenance.Pacer) error {
	var records, snaps int64
	byType := map[uint8]int64{}
	for after := uint64(0); ; {
		rep, err := s.wal.ScrubStep(ctx, after, 1)
		records += rep.Records
		for t, st := range rep.ByType {
			byType[t] += st.Records
		}
		if err != nil {
			return asCorrupt(err)
		}
		if rep.Done || rep.Segments == 0 {
			break
		}
		after = rep.Last
		if err := p.Pause(ctx); err != nil {
			return err
		}
	}
	// Snapshots are verified without the checkpoint lock, so a paced
	// verification never holds up a checkpoint. Retention may retire one
	// meanwhile: it is renamed away before it is shrunk and removed, so
	// damage found in a file that no longer has its name is not damage.
	list, _, err := listSnapshots(s.opts.FS, s.dir)
	if err != nil {
		return err
	}
	for _, sf := range slices.Backward(list) { // oldest first
		err := s.verifySnapshot(ctx, sf, p)
		if err != nil && !errors.Is(err, context.Canceled) {
			if _, serr := s.opts.FS.Stat(sf.path); errors.Is(serr, fs.ErrNotExist) {
				continue // retired while it was read
			}
			return asCorrupt(err)
		}
		if err != nil {
			return err
		}
		snaps++
	}
	s.maint.scrubRuns.Add(1)
	s.maint.scrubRecords.Store(records)
	s.maint.scrubSnapshots.Store(snaps)
	s.maint.scrubByType.Store(&byType)
	return nil
}

// verifySnapshot checks the snapshot sf as Open does (checkSnapshot), on
// one goroutine, pausing every scrubEntriesStep entries.
func (s *Store) verifySnapshot(ctx context.Context, sf snapFile, p *maintenance.Pacer) error {
	n := 0
	pause := func(cid.CID, []cid.CID) error {
		if n++; n%scrubEntriesStep == 0 {
			return p.Pause(ctx)
		}
		return nil
	}
	_, _, err := checkSnapshot(ctx, s.opts.FS, sf, 1, snapshot.Entries{Pairs: pause, Triples: pause})
	return err
}

// runCompact has every shard turn value sets that fit the inline
// threshold back into slices (Shard.Compact), pausing between its steps.
// Shards without large sets are skipped at no cost.
func (s *Store) runCompact(ctx context.Context, _ Config, p *maintenance.Pacer) error {
	stop := pauser(ctx, p)
	for _, sh := range s.shards {
		s.maint.compacted.Add(int64(sh.Compact(stop)))
	}
	return ctx.Err()
}

// runAudit has every shard check its index against its map (Shard.Audit),
// pausing between its steps; a shard that disagrees has its index rebuilt
// from the map, which is counted and logged.
func (s *Store) runAudit(ctx context.Context, _ Config, p *maintenance.Pacer) error {
	stop := pauser(ctx, p)
	for i := range s.shards {
		s.auditShard(i, stop)
	}
	s.auditTriples(stop)
	return ctx.Err()
}

// auditShard audits shard i (see Shard.Audit) and counts and logs a
// rebuilt index. It reports whether the index was rebuilt.
func (s *Store) auditShard(i int, stop func() bool) bool {
	res := s.shards[i].Audit(stop)
	if res.Rebuilt {
		s.maint.auditMismatches.Add(int64(res.Mismatches))
		s.maint.auditRepairs.Add(1)
		s.opts.Logger.Warn("cidstore: shard index disagreed with its map; rebuilt", "shard", i, "mismatches", res.Mismatches)
	}
	return res.Rebuilt
}

// auditTriples audits the triple indexes (see triples.Set.Audit), counts
// and logs what it repaired, and reports whether it repaired anything.
func (s *Store) auditTriples(stop func() bool) bool {
	res := s.triples.Audit(stop)
	if res.Repaired == 0 {
		return false
	}
	s.maint.auditMismatches.Add(int64(res.Mismatches))
	s.maint.auditRepairs.Add(int64(res.Repaired))
	s.opts.Logger.Warn("cidstore: triple indexes disagreed; repaired", "mismatches", res.Mismatches, "repairs", res.Repaired)
	return true
}

// pauser adapts a worker's Pacer to the stop callback of the shards'
// maintenance passes, which they call between bounded steps: it pauses
// for the allowance and says stop once ctx ends.
func pauser(ctx context.Context, p *maintenance.Pacer) func() bool {
	return func() bool { return p.Pause(ctx) != nil }
}

// Audit checks every shard's map against its B-tree in full, in parallel
// over Config.Parallelism shards, rebuilding any index that disagrees, and
// returns the number of shards repaired. The audit worker does the same
// work one shard at a time, pausing to keep to its share of the CPU.
func (s *Store) Audit(ctx context.Context) (int, error) {
	var repaired atomic.Int64
	stop := func() bool { return ctx.Err() != nil }
	err := maintenance.ForEach(ctx, len(s.shards), s.cfg.Load().Parallelism, func(_ context.Context, i int) error {
		if s.auditShard(i, stop) {
			repaired.Add(1)
		}
		return nil
	})
	if err == nil && s.auditTriples(stop) {
		repaired.Add(1)
	}
	return int(repaired.Load()), err
}

// runGC removes obsolete files: leftover temporary snapshot files,
// snapshots beyond SnapshotsKept and WAL segments below the oldest kept
// snapshot. Empty records never exist (a key whose last value goes is
// removed at once), so there is nothing to collect in memory.
func (s *Store) runGC(ctx context.Context, _ Config, _ *maintenance.Pacer) error {
	s.ckpt.mu.Lock()
	defer s.ckpt.mu.Unlock()
	_, temps, err := listSnapshots(s.opts.FS, s.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range temps {
		// A temporary file may be a whole snapshot (a checkpoint or a
		// removal cut short): free it in steps, as retain does.
		if err := s.freeGradually(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("cidstore: gc: %w", err))
			continue
		}
		s.maint.gcRemoved.Add(1)
	}
	return errors.Join(append(errs, s.retain(ctx))...)
}
