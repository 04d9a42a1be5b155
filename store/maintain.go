package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/snapshot"
)

// Worker names, for TriggerWorker and Stats.
const (
	WorkerCheckpoint = "checkpoint"
	WorkerScrub      = "scrub"
	WorkerCompact    = "compact"
	WorkerAudit      = "audit"
	WorkerGC         = "gc"
)

// checkpointPoll is how often the checkpointer looks at the WAL size when
// the size trigger is on.
const checkpointPoll = time.Second

// maintStats are the maintenance workers' results beyond run counts.
type maintStats struct {
	scrubRuns        atomic.Int64
	scrubCorrupt     atomic.Int64 // scrub passes that found damage
	scrubRecords     atomic.Int64 // records verified by the last pass
	scrubSnapshots   atomic.Int64 // snapshots verified by the last pass
	auditRepairs     atomic.Int64 // shard indexes rebuilt
	auditMismatches  atomic.Int64
	compacted        atomic.Int64 // records rewritten by the compactor
	gcRemoved        atomic.Int64 // files removed by GC
	scrubByType      atomic.Pointer[map[uint8]int64]
	lastCheckpointAt atomic.Int64 // unix nanos
}

// configFromOptions is the initial maintenance config.
func configFromOptions(o Options) maintenance.Config {
	c := o.Config
	if c == nil {
		d := maintenance.Default()
		c = &d
	}
	cfg := *c
	if o.Sync != SyncAlways {
		cfg.Sync = maintenance.SyncMode(o.Sync)
	}
	if o.SyncInterval > 0 {
		cfg.SyncInterval = o.SyncInterval
	}
	if o.SnapshotsKept > 0 {
		cfg.SnapshotsKept = o.SnapshotsKept
	}
	if o.InlineValues > 0 {
		cfg.InlineValues = o.InlineValues
	}
	return cfg
}

// Config returns the maintenance configuration in force.
func (s *Store) Config() maintenance.Config { return s.cfg.Load() }

// UpdateConfig replaces the configuration with fn(current), validated and
// swapped atomically (concurrent updates never lose one another). The WAL
// sync policy, the inline threshold and every worker interval follow the
// new value at once, without a restart. An invalid result is rejected with
// an error wrapping maintenance.ErrInvalidConfig and the old value stays.
func (s *Store) UpdateConfig(fn func(maintenance.Config) maintenance.Config) error {
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
		s.wal.SetSync(SyncMode(c.Sync), c.SyncInterval)
	}
	for _, sh := range s.shards {
		sh.Lock()
		sh.SetInlineMax(c.InlineValues)
		sh.Unlock()
	}
}

// TriggerWorker runs the named maintenance worker now and returns its
// result. Names: WorkerCheckpoint, WorkerScrub, WorkerCompact, WorkerAudit,
// WorkerGC (an in-memory store has only compact and audit).
func (s *Store) TriggerWorker(ctx context.Context, name string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.sched.Trigger(ctx, name)
}

// startMaintenance registers and starts the background workers.
func (s *Store) startMaintenance() error {
	s.sched = maintenance.NewScheduler(s.cfg, maintenance.Options{Logger: s.opts.Logger, Clock: s.opts.Clock})
	workers := []maintenance.Worker{
		{Name: WorkerCompact, Interval: func(c maintenance.Config) time.Duration { return c.CompactInterval }, Run: s.runCompact},
		{Name: WorkerAudit, Interval: func(c maintenance.Config) time.Duration { return c.AuditInterval }, Run: s.runAudit},
	}
	if s.wal != nil {
		workers = append(workers,
			maintenance.Worker{Name: WorkerCheckpoint, Interval: checkpointInterval, Run: s.runCheckpoint},
			maintenance.Worker{Name: WorkerScrub, Interval: func(c maintenance.Config) time.Duration { return c.ScrubInterval }, Run: s.runScrub},
			maintenance.Worker{Name: WorkerGC, Interval: func(c maintenance.Config) time.Duration { return c.GCInterval }, Run: s.runGC},
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
func checkpointInterval(c maintenance.Config) time.Duration {
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
	return int64(s.wal.Stats().AppendedBytes) - s.walAtSnap.Load()
}

// runCheckpoint checkpoints when the WAL has grown past
// CheckpointWALBytes since the newest snapshot, or CheckpointInterval has
// passed since the last checkpoint and something was written. (To
// checkpoint unconditionally, call Store.Checkpoint.)
func (s *Store) runCheckpoint(ctx context.Context, c maintenance.Config) error {
	since := s.walSinceSnapshot()
	due := since > 0 && c.CheckpointInterval > 0 &&
		time.Since(time.Unix(0, s.maint.lastCheckpointAt.Load())) >= c.CheckpointInterval
	if c.CheckpointWALBytes > 0 && since >= c.CheckpointWALBytes {
		due = true
	}
	if !due {
		return nil
	}
	return s.Checkpoint(ctx)
}

// Per-tick budgets of the incremental workers: a tick does a bounded
// step and a full pass spreads over many ticks, so even aggressive
// intervals cost the foreground little.
const (
	auditBudget   = 4096 // index entries checked per audit tick
	compactBudget = 4096 // keys examined per compaction tick
	scrubSegments = 1    // closed WAL segments verified per scrub tick
)

// workerState is the progress of the incremental workers. Each part is
// touched only by its own worker's goroutine.
type workerState struct {
	audit   auditState
	compact compactState
	scrub   scrubState
}

type auditState struct {
	shard int
	pos   shard.Position
	bad   int
}

type compactState struct {
	shard int
	pos   shard.Position
}

type scrubState struct {
	walAfter uint64 // first LSN of the last segment verified
	walDone  bool
	snapLSN  uint64 // cut LSN of the last snapshot verified this pass
	records  int64
	snaps    int64
	byType   map[uint8]int64
}

// runScrub verifies the next closed WAL segment, or once the WAL pass is
// done the next snapshot; after the last snapshot the pass is complete, its
// totals are published and a new pass begins. Damage is counted and
// logged, and writes go on.
func (s *Store) runScrub(ctx context.Context, _ maintenance.Config) error {
	ws := &s.ws.scrub
	if ws.byType == nil {
		ws.byType = map[uint8]int64{}
	}
	err := s.scrubStep(ctx, ws)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.maint.scrubCorrupt.Add(1)
		s.opts.Logger.Error("cidstore: scrub found damage", "dir", s.dir, "err", err)
	}
	return err
}

func (s *Store) scrubStep(ctx context.Context, ws *scrubState) error {
	if !ws.walDone {
		rep, err := s.wal.ScrubStep(ctx, ws.walAfter, scrubSegments)
		ws.walAfter, ws.walDone = rep.Last, rep.Done || err != nil
		ws.records += rep.Records
		for t, st := range rep.ByType {
			ws.byType[t] += st.Records
		}
		if rep.Segments > 0 || err != nil {
			return err
		}
	}
	// The checkpoint lock keeps retention from removing the snapshot
	// being verified.
	s.ckptMu.Lock()
	snaps, _, err := s.listSnapshots()
	var next *snapFile
	for i := len(snaps) - 1; i >= 0; i-- { // oldest first
		if snaps[i].lsn > ws.snapLSN {
			next = &snaps[i]
			break
		}
	}
	if err == nil && next != nil {
		ws.snapLSN = next.lsn
		_, _, err = snapshot.VerifyFile(s.opts.FS, next.path)
		if err == nil {
			ws.snaps++
		}
	}
	s.ckptMu.Unlock()
	if next == nil || err != nil {
		// Pass complete: publish its totals and start over.
		s.maint.scrubRuns.Add(1)
		s.maint.scrubRecords.Store(ws.records)
		s.maint.scrubSnapshots.Store(ws.snaps)
		byType := ws.byType
		s.maint.scrubByType.Store(&byType)
		*ws = scrubState{byType: map[uint8]int64{}}
	}
	return asCorrupt(err)
}

// runCompact examines the next compactBudget keys, shard after shard, and
// turns value sets that fit the inline threshold back into slices. Shards
// without large sets are skipped at no cost.
func (s *Store) runCompact(ctx context.Context, _ maintenance.Config) error {
	ws := &s.ws.compact
	for budget, visited := compactBudget, 0; budget > 0 && visited <= len(s.shards) && ctx.Err() == nil; {
		var n int
		ws.pos, n = s.shards[ws.shard].CompactStep(ws.pos, min(budget, 1024))
		s.maint.compacted.Add(int64(n))
		budget -= 1024
		if ws.pos.Done() {
			ws.shard = (ws.shard + 1) % len(s.shards)
			ws.pos = shard.Position{}
			visited++
		}
	}
	return nil
}

// runAudit checks the next auditBudget index entries against the map,
// shard after shard; when a shard's pass ends with any mismatch (or its
// map, index and key count disagree) its index is rebuilt from the map.
func (s *Store) runAudit(ctx context.Context, _ maintenance.Config) error {
	ws := &s.ws.audit
	for budget := auditBudget; budget > 0 && ctx.Err() == nil; budget -= 1024 {
		sh := s.shards[ws.shard]
		if ws.pos == (shard.Position{}) && !sh.CountsAgree() {
			ws.bad++
		}
		var bad int
		ws.pos, bad = sh.AuditStep(ws.pos, min(budget, 1024))
		ws.bad += bad
		if !ws.pos.Done() {
			continue
		}
		if ws.bad > 0 {
			s.maint.auditMismatches.Add(int64(ws.bad))
			s.maint.auditRepairs.Add(1)
			sh.RebuildIndex()
			s.opts.Logger.Warn("cidstore: shard index disagreed with its map; rebuilt", "shard", ws.shard, "mismatches", ws.bad)
		}
		ws.shard = (ws.shard + 1) % len(s.shards)
		ws.pos, ws.bad = shard.Position{}, 0
	}
	return nil
}

// Audit checks every shard's map against its B-tree in full, in parallel
// over Config.Parallelism shards, rebuilding any index that disagrees, and
// returns the number of shards repaired. The audit worker does the same
// work incrementally.
func (s *Store) Audit(ctx context.Context) (int, error) {
	var repaired atomic.Int64
	stop := func() bool { return ctx.Err() != nil }
	err := maintenance.ForEach(ctx, len(s.shards), s.cfg.Load().Parallelism, func(_ context.Context, i int) error {
		if res := s.shards[i].Audit(stop); res.Rebuilt {
			repaired.Add(1)
			s.maint.auditRepairs.Add(1)
			s.maint.auditMismatches.Add(int64(res.Mismatches))
		}
		return nil
	})
	return int(repaired.Load()), err
}

// runGC removes obsolete files: leftover temporary snapshot files,
// snapshots beyond SnapshotsKept and WAL segments below the oldest kept
// snapshot. Empty records never exist (a key whose last value goes is
// removed at once), so there is nothing to collect in memory.
func (s *Store) runGC(ctx context.Context, _ maintenance.Config) error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	_, temps, err := s.listSnapshots()
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range temps {
		if err := s.opts.FS.Remove(t); err != nil {
			errs = append(errs, fmt.Errorf("cidstore: gc: %w", err))
			continue
		}
		s.maint.gcRemoved.Add(1)
	}
	return errors.Join(append(errs, s.retain())...)
}
