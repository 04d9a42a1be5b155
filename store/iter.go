package store

import (
	"container/heap"
	"iter"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/triples"
)

// The consistent cut and the iteration over it. A cut (cutAll) locks
// every shard for a moment to clone its index and read the WAL's position;
// All, Range, Export, View and checkpoints then iterate the clones
// without a lock.

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

// lockAll locks every shard, pair shards in order (applying the batch
// shares queued on them, see publish.go) and then the triple index
// shards in their lock order, and returns the function that
// unlocks them; callers defer it, so that a panic while the locks are
// held (a bug, which the maintenance scheduler recovers in a worker) does
// not leave the store locked.
func (s *Store) lockAll() (unlock func()) {
	for i := range s.shards {
		s.lockShard(i)
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

// All returns an iterator over every key and its values in ascending key
// order. It iterates a consistent point-in-time view: writes made after
// All's iteration starts are not seen, and an InsertBatch is seen whole or
// not at all. Taking the view locks each shard for a moment (O(1) per
// shard); the iteration itself holds no lock. Each values slice is fresh
// and belongs to the caller.
func (s *Store) All() iter.Seq2[cid.CID, []cid.CID] {
	return s.scan(nil, nil)
}

// Range is like All but yields only keys k with from <= k < to. A zero
// from means "from the start" and a zero to means "to the end" (the zero
// CID is reserved, so neither is a real bound).
func (s *Store) Range(from, to cid.CID) iter.Seq2[cid.CID, []cid.CID] {
	var f, t *cid.CID
	if !from.IsZero() {
		f = &from
	}
	if !to.IsZero() {
		t = &to
	}
	return s.scan(f, t)
}

func (s *Store) scan(from, to *cid.CID) iter.Seq2[cid.CID, []cid.CID] {
	return func(yield func(cid.CID, []cid.CID) bool) {
		views, _ := s.cut()
		if views == nil {
			return
		}
		var m merger
		for _, v := range views {
			c := v.Cursor(from, to)
			if c.Next() {
				m = append(m, c)
			}
		}
		heap.Init(&m)
		for len(m) > 0 {
			c := m[0]
			e := c.Entry()
			if !yield(e.Key(), e.AppendValues(nil)) {
				return
			}
			if c.Next() {
				heap.Fix(&m, 0)
			} else {
				heap.Pop(&m)
			}
		}
	}
}

// merger is a min-heap of shard cursors ordered by their current key.
type merger []*shard.Cursor

func (m merger) Len() int { return len(m) }
func (m merger) Less(i, j int) bool {
	return cid.Less(m[i].Entry().Key(), m[j].Entry().Key())
}
func (m merger) Swap(i, j int) { m[i], m[j] = m[j], m[i] }
func (m *merger) Push(x any)   { *m = append(*m, x.(*shard.Cursor)) }
func (m *merger) Pop() any {
	old := *m
	c := old[len(old)-1]
	*m = old[:len(old)-1]
	return c
}
