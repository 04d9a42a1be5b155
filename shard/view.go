package shard

import (
	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
)

// View is an immutable point-in-time view of a shard, safe for concurrent
// use. Later writes to the shard do not show through it.
type View struct {
	index *btree.BTreeG[item]
	lsn   uint64
}

// LSN returns the last log sequence number published in the shard when the
// view was taken.
func (v *View) LSN() uint64 { return v.lsn }

// Len returns the number of keys in the view.
func (v *View) Len() int { return v.index.Len() }

// Entry is one key with its values, a read-only handle that stays valid as
// long as it is referenced. An Entry of a View always reads the values the
// view was taken with; an Entry from Lookup reads the key's values as they
// are at each call (a whole, sorted set each time), since a write may swap
// a new set into a live record (see Shard.Add).
type Entry struct{ r *record }

// Key returns the entry's key.
func (e Entry) Key() cid.CID { return e.r.key }

// Len returns the number of values.
func (e Entry) Len() int { return e.r.count() }

// Contains reports whether v is one of the entry's values.
func (e Entry) Contains(v cid.CID) bool { return e.r.contains(v) }

// AppendValues appends the values in ascending order to dst.
func (e Entry) AppendValues(dst []cid.CID) []cid.CID { return e.r.appendValues(dst) }

// AscendValues calls fn for each value in ascending order until fn
// returns false.
func (e Entry) AscendValues(fn func(cid.CID) bool) { e.r.ascend(fn) }

// Ascend calls fn for every entry with from <= key < to, in key order,
// until fn returns false. A nil bound is open.
func (v *View) Ascend(from, to *cid.CID, fn func(Entry) bool) {
	it := func(x item) bool { return fn(Entry{x.r}) }
	switch {
	case from == nil && to == nil:
		v.index.Ascend(it)
	case to == nil:
		v.index.AscendGreaterOrEqual(pivot(*from), it)
	case from == nil:
		v.index.AscendLessThan(pivot(*to), it)
	default:
		v.index.AscendRange(pivot(*from), pivot(*to), it)
	}
}

// Cursor walks a View in key order one entry at a time. It fetches entries
// from the tree in small batches, so it needs no goroutine and can be
// merged with other cursors.
type Cursor struct {
	v     *View
	to    *cid.CID
	next  cid.CID // first key not fetched yet
	more  bool    // whether keys >= next may remain
	buf   []*record
	i     int
	entry Entry
}

const cursorBatch = 64

// Cursor returns a cursor over the entries with from <= key < to (nil
// bounds are open), positioned before the first one.
func (v *View) Cursor(from, to *cid.CID) *Cursor {
	c := &Cursor{v: v, to: to, more: true, buf: make([]*record, 0, cursorBatch)}
	if from != nil {
		c.next = *from
	}
	return c
}

// Next advances to the next entry and reports whether there is one.
func (c *Cursor) Next() bool {
	if c.i >= len(c.buf) {
		if !c.fill() {
			return false
		}
	}
	c.entry = Entry{c.buf[c.i]}
	c.i++
	return true
}

// Entry returns the current entry. Valid after Next returned true.
func (c *Cursor) Entry() Entry { return c.entry }

func (c *Cursor) fill() bool {
	clear(c.buf)
	c.buf, c.i = c.buf[:0], 0
	if !c.more {
		return false
	}
	collect := func(x item) bool {
		c.buf = append(c.buf, x.r)
		return len(c.buf) < cursorBatch
	}
	p := pivot(c.next)
	if c.to != nil {
		c.v.index.AscendRange(p, pivot(*c.to), collect)
	} else {
		c.v.index.AscendGreaterOrEqual(p, collect)
	}
	if len(c.buf) < cursorBatch {
		c.more = false
	} else {
		c.next, c.more = successor(c.buf[len(c.buf)-1].key)
	}
	return len(c.buf) > 0
}

// successor returns k+1 as a 256-bit integer, and false when k is the
// largest CID.
func successor(k cid.CID) (cid.CID, bool) {
	for i := cid.Size - 1; i >= 0; i-- {
		k[i]++
		if k[i] != 0 {
			return k, true
		}
	}
	return k, false
}

// pivot returns an index item for searching at key k.
func pivot(k cid.CID) item { return itemOf(&record{key: k}) }
