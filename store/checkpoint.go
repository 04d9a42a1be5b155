package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/snapshot"
)

// checkpointer is the state of checkpointing: what the newest snapshot
// covers, which snapshot files retention trusts, and the statistics.
type checkpointer struct {
	// mu lets one checkpoint, Restore or retention run at a time; Close
	// waits for the one in progress.
	mu      sync.Mutex
	trust   snapTrust     // which snapshot files retention may count; guarded by mu
	snapLSN atomic.Uint64 // cut LSN of the newest snapshot
	walAt   atomic.Int64  // WAL bytes appended at its cut (negative: replayed at Open)
	lastAt  atomic.Int64  // when the last checkpoint (or Open) was, unix nanos

	statsMu sync.Mutex // guards stats
	stats   CheckpointStats
}

// wrote records a snapshot written with cut lsn, by a checkpoint or by
// Restore: retention trusts it from now on, and it is counted. d is how
// long writing it took, stall how long writers waited for it. The caller
// holds mu.
func (c *checkpointer) wrote(lsn uint64, d, stall time.Duration, sum snapshot.Summary) {
	c.trust.add(lsn)
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	c.stats.Count++
	c.stats.LastLSN, c.stats.LastDuration, c.stats.LastStall = lsn, d, stall
	c.stats.LastBytes, c.stats.LastPairs, c.stats.LastTriples = sum.Bytes, sum.Pairs, sum.Triples
	c.stats.LastTime = time.Now()
}

// covered records that the newest snapshot, with cut lsn, holds what the
// store held when the WAL had appended walBytes payload bytes. The caller
// holds mu.
func (c *checkpointer) covered(lsn uint64, walBytes int64) {
	c.snapLSN.Store(lsn)
	c.walAt.Store(walBytes)
	c.lastAt.Store(time.Now().UnixNano())
}

// statistics returns the statistics of the checkpoints taken since Open
// (Stats().Checkpoints).
func (c *checkpointer) statistics() CheckpointStats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return c.stats
}

// Checkpoint writes a snapshot of the whole store and then drops what it
// makes obsolete: WAL segments wholly below the oldest kept snapshot and
// snapshots beyond the newest SnapshotsKept.
//
// The snapshot is a consistent cut: every shard is locked (in order) just
// long enough to clone its B-tree and read the last assigned LSN, then the
// file is written from the clones while writers go on. The file is written
// to a temporary name, fsynced, renamed and the directory fsynced; a
// cancelled ctx or an error leaves no partial file. Only one checkpoint
// runs at a time; a second caller waits for the first. If nothing was
// written since the last snapshot, Checkpoint does nothing.
func (s *Store) Checkpoint(ctx context.Context) error {
	return s.checkpoint(ctx, nil, false)
}

// checkpoint implements Checkpoint. mp is the checkpoint worker's
// maintenance pacer (nil otherwise): the time the snapshot waits for the
// WAL is reported to it as idle (see yield.go). force writes a snapshot
// even when no WAL record was logged since the last one, as Import needs:
// its pairs are in no record.
func (s *Store) checkpoint(ctx context.Context, mp *maintenance.Pacer, force bool) error {
	if s.wal == nil {
		return fmt.Errorf("%w: Checkpoint needs a directory", ErrInMemory)
	}
	s.ckpt.mu.Lock()
	defer s.ckpt.mu.Unlock()
	if err := s.readOnly(); err != nil {
		return err
	}
	cutStart := time.Now()
	views, tviews, mark := s.cutAll()
	stall := time.Since(cutStart)
	lsn := mark.lsn
	if views == nil {
		return ErrClosed
	}
	if !force && lsn == s.ckpt.snapLSN.Load() {
		return nil
	}
	// No snapshot may cover LSNs the WAL could still lose: after a crash
	// the log would hand them out again.
	if err := s.wal.Sync(); err != nil {
		return s.fail(err)
	}
	start := time.Now()
	parts, h := snapshotParts(views, tviews, lsn)
	path := Layout{s.dir}.Snapshot(lsn)
	if err := s.asideUntrusted(snapFile{lsn, path}); err != nil {
		return err
	}
	// Leave the writers that go on meanwhile their turn (yield.go).
	sum, err := snapshot.WriteFile(ctx, s.opts.FS, path, h, parts, s.snapshotOptions(mp)...)
	if err != nil {
		return fmt.Errorf("cidstore: checkpoint: %w", err)
	}
	d := time.Since(start)
	s.ckpt.wrote(lsn, d, stall, sum)
	s.ckpt.covered(lsn, mark.bytes)
	s.opts.Logger.Info("cidstore: checkpoint", "lsn", lsn, "pairs", sum.Pairs, "bytes", sum.Bytes,
		"duration", d, "stall", stall)
	return s.retain(ctx)
}
