package triples

import (
	"container/heap"
	"iter"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
)

// View is an immutable point-in-time view of one shard of one index, safe
// for concurrent use; later writes do not show through it.
type View struct {
	order Order
	index *btree.BTreeG[item]
	lsn   uint64
}

// View returns a view of shard i of the SPO index. O(1): the key index is
// cloned copy-on-write. The caller holds every lock (LockAll), so that
// views of several shards form one consistent cut. (Only SPO is ordered:
// POS and OSP keep no B-tree.)
func (s *Set) View(i int) *View {
	sh := s.idx[SPO][i]
	return &View{order: SPO, index: sh.index.Clone(), lsn: sh.lsn}
}

// Views returns views of every shard of SPO, taking the locks itself.
func (s *Set) Views() []*View {
	s.LockAll()
	defer s.UnlockAll()
	vs := make([]*View, len(s.idx[SPO]))
	for i := range vs {
		vs[i] = s.View(i)
	}
	return vs
}

// Keys returns the number of keys in the view.
func (v *View) Keys() int { return v.index.Len() }

// Entries yields each key of the view in ascending order with its values
// flattened: the second and third components of each triple (in the
// index's rotation), value after value, ascending. The slice is reused
// between calls. This is the shape of a snapshot partition of triples.
func (v *View) Entries() iter.Seq2[cid.CID, []cid.CID] {
	return func(yield func(cid.CID, []cid.CID) bool) {
		var buf []pair
		o := v.order
		v.index.Ascend(func(x item) bool {
			buf = o.appendValues(buf[:0], x.r)
			return yield(o.key(x.r), flatten(buf))
		})
	}
}

// flatten views pairs as their CIDs, two by two.
func flatten(ps []pair) []cid.CID {
	if len(ps) == 0 {
		return nil
	}
	return unsafeFlatten(ps)
}

// Triples yields every triple of the view in the index's order.
func (v *View) Triples() iter.Seq[Triple] {
	return func(yield func(Triple) bool) {
		o := v.order
		v.index.Ascend(func(x item) bool {
			k := o.key(x.r)
			ok := true
			o.ascend(x.r, cid.Zero, func(p pair) bool {
				ok = yield(o.join(k, p))
				return ok
			})
			return ok
		})
	}
}

// All returns every triple in ascending (S, P, O) order, from a consistent
// point-in-time view of the SPO index: a batch is seen whole or not at
// all. Taking the view locks each shard for a moment (O(1) per shard); the
// walk holds no lock.
func (s *Set) All() iter.Seq[Triple] {
	return func(yield func(Triple) bool) {
		views := s.Views()
		m := make(cursors, 0, len(views))
		for _, v := range views {
			next, stop := iter.Pull(v.Triples())
			defer stop()
			if t, ok := next(); ok {
				m = append(m, &cursor{t: t, next: next})
			}
		}
		heap.Init(&m)
		for len(m) > 0 {
			c := m[0]
			if !yield(c.t) {
				return
			}
			var ok bool
			if c.t, ok = c.next(); ok {
				heap.Fix(&m, 0)
			} else {
				heap.Pop(&m)
			}
		}
	}
}

// cursor is the current triple of one shard's walk.
type cursor struct {
	t    Triple
	next func() (Triple, bool)
}

// cursors is a min-heap of shard walks by their current triple. Shards
// hold disjoint subjects, so comparing subjects orders them.
type cursors []*cursor

func (m cursors) Len() int           { return len(m) }
func (m cursors) Less(i, j int) bool { return cid.Less(m[i].t.S, m[j].t.S) }
func (m cursors) Swap(i, j int)      { m[i], m[j] = m[j], m[i] }
func (m *cursors) Push(x any)        { *m = append(*m, x.(*cursor)) }
func (m *cursors) Pop() any {
	old := *m
	c := old[len(old)-1]
	*m = old[:len(old)-1]
	return c
}
