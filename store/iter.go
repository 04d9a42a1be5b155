package store

import (
	"container/heap"
	"iter"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/shard"
)

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
