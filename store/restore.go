package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/triples"
)

// Restore replaces the whole contents of the store with a snapshot stream
// (as written by Export or View.Export): afterwards the store holds
// exactly the stream's pairs, whatever it held before. A replica uses it
// to catch up from its leader's snapshot.
//
//   - The stream is read and validated completely, into a scratch copy,
//     before anything changes: on any error the store is unchanged.
//   - It holds every shard lock while it changes the shards, so writers
//     wait and then apply on top of the new contents, and ordered
//     iteration (All, Range, Export, View) sees the old contents or the
//     new, never a mix. Point reads (Get, Contains) of different keys may
//     see the change partly applied, as they may see an InsertBatch.
//   - In a persistent store the new contents are durable when Restore
//     returns, and a crash at any moment leaves either the old contents or
//     the new. Restore first logs an empty batch record to claim a fresh
//     LSN L and fsyncs the log, then writes a snapshot of the new contents
//     named for L (temporary file, fsync, rename, directory fsync), and only
//     then changes the shards. Recovery loads the newest snapshot and
//     replays only the records after its LSN, so no record of the old
//     contents is replayed on top of the new. Older snapshots, and WAL
//     segments wholly below L, are removed afterwards: they describe
//     contents that are gone.
//
// Changing the shards costs about as much per changed pair as an Insert
// or Delete; unchanged keys are only compared. The scratch copy holds the
// new contents in memory while Restore runs.
func (s *Store) Restore(ctx context.Context, r io.Reader) (snapshot.Summary, error) {
	if s.closed.Load() {
		return snapshot.Summary{}, ErrClosed
	}
	if err := s.readOnly(); err != nil {
		return snapshot.Summary{}, err
	}
	scratch, err := s.scratch()
	if err != nil {
		return snapshot.Summary{}, err
	}
	defer scratch.Close()
	sum, err := scratch.Import(ctx, r)
	if err != nil {
		return sum, err
	}
	want, wantT, _ := scratch.cutAll()

	s.ckpt.mu.Lock() // no checkpoint meanwhile; Close waits for the end
	defer s.ckpt.mu.Unlock()
	lsn, err := s.restoreLocked(ctx, want, wantT, scratch.triples)
	if err != nil {
		return sum, err
	}
	if s.wal != nil {
		// The new snapshot is the newest (no checkpoint runs meanwhile);
		// the older ones, and the WAL they need, describe contents that
		// are gone.
		if err := s.keepNewest(ctx, 1); err != nil {
			// The new snapshot is the newest, so recovery uses it; the
			// next checkpoint retries the removal.
			s.opts.Logger.Warn("cidstore: restore: could not remove what the restore replaced", "err", err)
		}
	}
	s.opts.Logger.Info("cidstore: restored", "dir", s.dir, "lsn", lsn, "pairs", sum.Pairs)
	return sum, nil
}

// scratch returns an empty in-memory store that places every key in the
// same shard as s does, to read a stream into before it replaces s.
func (s *Store) scratch() (*Store, error) {
	c := DefaultConfig()
	c.InlineValues = s.cfg.Load().InlineValues
	c.CompactInterval, c.GCInterval, c.ScrubInterval, c.AuditInterval = 0, 0, 0, 0 // it lives for one call
	t, err := Open("", Options{InMemory: true, Shards: len(s.shards), Config: &c, Logger: s.opts.Logger})
	if err != nil {
		return nil, err
	}
	t.seed = s.seed
	return t, nil
}

// restoreLocked makes the contents of s equal to want (views of a store
// with the same shard placement) and its triples those of src (wantT are
// views of src's SPO index) under every shard lock, durably first in a
// persistent store. It returns the LSN the new contents are filed under
// (0 in memory).
func (s *Store) restoreLocked(ctx context.Context, want []*shard.View, wantT []*triples.View, src *triples.Set) (uint64, error) {
	defer s.lockAll()()
	if s.closed.Load() || want == nil {
		return 0, ErrClosed
	}
	var lsn uint64
	if s.wal != nil {
		var err error
		if lsn, err = s.fileRestore(ctx, want, wantT); err != nil {
			return 0, err
		}
	}
	// From here on the new contents are what recovery would give, so the
	// shards must follow whatever ctx says.
	err := maintenance.ForEach(context.Background(), len(s.shards), runtime.GOMAXPROCS(0),
		func(_ context.Context, i int) error {
			s.replaceShard(i, want[i])
			s.shards[i].SetLSN(lsn)
			return nil
		})
	if err != nil {
		return 0, err
	}
	s.replaceTriples(wantT, src)
	if s.wal != nil {
		_, bytes := s.wal.Appended()
		s.ckpt.covered(lsn, int64(bytes))
	}
	return lsn, nil
}

// emptyBatch is the payload of a batch record of no operations: replaying
// it changes nothing. Restore logs one to claim an LSN of its own.
var emptyBatch = binary.LittleEndian.AppendUint32(nil, 0)

// fileRestore makes the new contents durable as the newest snapshot, under
// a fresh LSN that it returns. The caller holds ckpt.mu and every shard
// lock, so no record is logged between the claim and the cut it names.
func (s *Store) fileRestore(ctx context.Context, want []*shard.View, wantT []*triples.View) (uint64, error) {
	lsn, err := s.wal.Append(opBatch, emptyBatch)
	if err != nil {
		return 0, s.fail(err)
	}
	// As in a checkpoint: no snapshot may name an LSN the log could lose.
	if err := s.wal.Sync(); err != nil {
		return 0, s.fail(err)
	}
	start := time.Now()
	path := Layout{s.dir}.Snapshot(lsn)
	if err := s.asideUntrusted(snapFile{lsn, path}); err != nil {
		return 0, err
	}
	parts, h := snapshotParts(want, wantT, lsn)
	sum, err := snapshot.WriteFile(ctx, s.opts.FS, path, h, parts, s.snapshotOptions(nil)...)
	if err != nil {
		return 0, fmt.Errorf("cidstore: restore: %w", err)
	}
	// Writers wait for the whole of it: the caller holds their locks.
	d := time.Since(start)
	s.ckpt.wrote(lsn, d, d, sum)
	return lsn, nil
}

// replaceShard changes shard i, whose lock the caller holds, until it
// holds exactly the entries of want: keys only it has are removed, keys
// only want has are added, and the value sets of common keys are brought
// to want's. Both sides are walked in key order.
func (s *Store) replaceShard(i int, want *shard.View) {
	sh, c := s.shards[i], &s.counts[i]
	have := sh.View().Cursor(nil, nil)
	next := want.Cursor(nil, nil)
	okH, okN := have.Next(), next.Next()
	var hv, nv []cid.CID
	for okH || okN {
		var cmp int
		switch {
		case !okH:
			cmp = 1
		case !okN:
			cmp = -1
		default:
			cmp = cid.Compare(have.Entry().Key(), next.Entry().Key())
		}
		switch {
		case cmp < 0: // only here: goes
			sh.RemoveKey(have.Entry().Key())
			c.count(opRemoveKey)
			okH = have.Next()
		case cmp > 0: // only wanted: comes
			k := next.Entry().Key()
			nv = next.Entry().AppendValues(nv[:0])
			for _, v := range nv {
				sh.Add(k, v)
				c.count(opAdd)
			}
			okN = next.Next()
		default:
			k := have.Entry().Key()
			hv = have.Entry().AppendValues(hv[:0])
			nv = next.Entry().AppendValues(nv[:0])
			if !slices.Equal(hv, nv) {
				syncValues(sh, c, k, hv, nv)
			}
			okH, okN = have.Next(), next.Next()
		}
	}
}

// syncValues turns k's value set have into want (both sorted): values
// only in want are added first, so the key never vanishes on the way.
func syncValues(sh *shard.Shard, c *opCounts, k cid.CID, have, want []cid.CID) {
	for _, v := range want {
		if _, found := slices.BinarySearchFunc(have, v, cid.Compare); !found {
			sh.Add(k, v)
			c.count(opAdd)
		}
	}
	for _, v := range have {
		if _, found := slices.BinarySearchFunc(want, v, cid.Compare); !found {
			sh.Remove(k, v)
			c.count(opRemove)
		}
	}
}

// replaceTriples makes the triples of s exactly those of src, whose SPO
// index want views: triples only s has are deleted, those only src has
// inserted. The caller holds every lock (lockAll), as Restore does, so the
// change is one batch that no cut sees in part.
func (s *Store) replaceTriples(want []*triples.View, src *triples.Set) {
	var ops []TripleOp
	for i := range s.triples.Shards() {
		for t := range s.triples.View(i).Triples() {
			if !src.Has(t) {
				ops = append(ops, TripleOp{Delete: true, Triple: t})
			}
		}
	}
	for _, v := range want {
		for t := range v.Triples() {
			ops = append(ops, TripleOp{Triple: t})
		}
	}
	if len(ops) == 0 {
		return
	}
	b := s.triples.Prepare(ops) // its shards are locked already
	b.Resolve()
	b.Publish(0)
	s.tcounts.count(b.Changes())
	b.Release()
}
