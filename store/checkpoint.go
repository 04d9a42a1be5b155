package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/triples"
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

// cut takes a consistent point-in-time view of every shard and the LSN it
// corresponds to: with every shard lock held no operation is between
// "logged" and "published", so the view holds exactly the operations up to
// the WAL's last LSN. Returns nil views after Close.
func (s *Store) cut() ([]*shard.View, walMark) {
	views, _, mark := s.cutAll()
	return views, mark
}

// cutAll is cut with views of the SPO triple index too, taken under the
// same locks (every pair shard's, then every triple index shard's): a
// triple batch is in the cut whole or not at all.
func (s *Store) cutAll() ([]*shard.View, []*triples.View, walMark) {
	unlock := s.lockAll()
	defer unlock()
	if s.cutHook != nil {
		s.cutHook()
	}
	var views []*shard.View
	var tviews []*triples.View
	var mark walMark
	if !s.closed.Load() {
		views = make([]*shard.View, len(s.shards))
		for i, sh := range s.shards {
			views[i] = sh.View()
		}
		tviews = make([]*triples.View, s.triples.Shards())
		for i := range tviews {
			tviews[i] = s.triples.View(i)
		}
		if s.wal != nil {
			lsn, bytes := s.wal.Appended()
			mark = walMark{lsn, int64(bytes)}
		}
	}
	return views, tviews, mark
}

// lockAll locks every shard, pair shards in order and then the triple
// index shards in their lock order, and returns the function that
// unlocks them; callers defer it, so that a panic while the locks are
// held (a bug, which the maintenance scheduler recovers in a worker) does
// not leave the store locked.
func (s *Store) lockAll() (unlock func()) {
	for _, sh := range s.shards {
		sh.Lock()
	}
	s.triples.LockAll()
	return func() {
		s.triples.UnlockAll()
		for _, sh := range s.shards {
			sh.Unlock()
		}
	}
}

// walMark is where the WAL stood at a cut: its last LSN and the payload
// bytes appended so far.
type walMark struct {
	lsn   uint64
	bytes int64
}

// snapshotParts returns the partitions and header of a snapshot at lsn:
// one partition per pair shard and, when the store holds triples, one per
// SPO shard after them.
func snapshotParts(views []*shard.View, tviews []*triples.View, lsn uint64) ([]snapshot.Part, snapshot.Header) {
	parts := viewParts(views)
	n := 0
	for _, v := range tviews {
		n += v.Keys()
	}
	if n > 0 {
		for _, v := range tviews {
			parts = append(parts, v.Entries())
		}
	} else {
		tviews = nil
	}
	return parts, snapshot.Header{LSN: lsn, Parts: len(parts), Triples: len(tviews)}
}

// viewParts presents shard views as snapshot partitions, one per shard.
func viewParts(views []*shard.View) []snapshot.Part {
	parts := make([]snapshot.Part, len(views))
	for i, v := range views {
		parts[i] = viewPart(v)
	}
	return parts
}

// viewPart presents a shard view as a snapshot partition, reusing one
// values buffer.
func viewPart(v *shard.View) snapshot.Part {
	return func(yield func(cid.CID, []cid.CID) bool) {
		buf := make([]cid.CID, 0, 64)
		v.Ascend(nil, nil, func(e shard.Entry) bool {
			buf = e.AppendValues(buf[:0])
			return yield(e.Key(), buf)
		})
	}
}

// checkpointStats returns statistics about the checkpoints taken since
// Open (Stats().Checkpoints).
func (s *Store) checkpointStats() CheckpointStats {
	s.ckptStatsMu.Lock()
	defer s.ckptStatsMu.Unlock()
	return s.ckpt
}
