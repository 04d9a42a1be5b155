package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/snapshot"
)

// CheckpointStats describe the checkpoints taken since Open.
type CheckpointStats struct {
	Count        int64         // checkpoints written
	LastLSN      uint64        // cut LSN of the newest snapshot
	LastDuration time.Duration // time to write the last one
	LastBytes    int64         // its size on disk
	LastPairs    int64         // pairs in it
	LastTriples  int64         // triples in it
	LastStall    time.Duration // how long the cut held the shard locks
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
// WAL is reported to it as idle (see yield.go). force writes a snapshot even when no WAL record was
// logged since the last one, as Import needs: its pairs are in no record.
func (s *Store) checkpoint(ctx context.Context, mp *maintenance.Pacer, force bool) error {
	if s.wal == nil {
		return fmt.Errorf("%w: Checkpoint needs a directory", ErrInMemory)
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
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
	if !force && lsn == s.snapLSN.Load() {
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
	s.snapLSN.Store(lsn)
	s.trust.add(lsn)
	s.ckptStatsMu.Lock()
	s.ckpt.Count++
	s.ckpt.LastLSN, s.ckpt.LastDuration, s.ckpt.LastBytes, s.ckpt.LastPairs, s.ckpt.LastStall = lsn, d, sum.Bytes, sum.Pairs, stall
	s.ckpt.LastTriples = sum.Triples
	s.ckptStatsMu.Unlock()
	s.walAtSnap.Store(mark.bytes)
	s.maint.lastCheckpointAt.Store(time.Now().UnixNano())
	s.opts.Logger.Info("cidstore: checkpoint", "lsn", lsn, "pairs", sum.Pairs, "bytes", sum.Bytes,
		"duration", d, "stall", stall)
	return s.retain(ctx)
}

// checkpointStats returns statistics about the checkpoints taken since
// Open (Stats().Checkpoints).
func (s *Store) checkpointStats() CheckpointStats {
	s.ckptStatsMu.Lock()
	defer s.ckptStatsMu.Unlock()
	return s.ckpt
}
