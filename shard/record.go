package shard

import (
	"sort"
	"sync/atomic"
	"unsafe"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
)

// record is the immutable state of one key. The common case, a key with a
// single value, is exactly 64 bytes: the key and the value. The all-zero
// CID is never a legal value, so one == cid.Zero marks a record that is the
// head of a multi (two or more values). Keeping the single-value record to
// 64 bytes is what keeps a pair near 132 heap bytes.
type record struct {
	key cid.CID
	one cid.CID
}

// multi is a record with two or more values. Its first field is a record
// whose one field is zero; pointers to it travel as *record.
//
// Its value set is immutable, but which set the record points to may
// change: a writer that holds the shard's lock may swap in a new set of
// the same form (an inline set for an inline set, a tree for a tree)
// instead of building a new record, as long as no View can hold the record
// (epoch, see Shard.Add). That saves the map store and the index update a
// new record costs. A reader loads the set once per call and so always
// sees a whole, sorted set.
type multi struct {
	record
	small atomic.Pointer[uint64]                // inline set (see makeSmall); nil for a tree record
	tree  atomic.Pointer[btree.BTreeG[cid.CID]] // the values, when the set is large; nil for an inline record
	epoch uint64                                // Shard.epoch when published; guarded by the shard's lock
}

// makeSmall allocates an inline set of n values: one pointer-free block of
// a count word followed by the values, which the caller fills before it
// publishes the block. One allocation per set, not a record and a slice.
func makeSmall(n int) (*uint64, []cid.CID) {
	b := make([]uint64, 1+n*(cid.Size/8))
	b[0] = uint64(n)
	return &b[0], unsafe.Slice((*cid.CID)(unsafe.Pointer(&b[1])), n)
}

// smallValues returns the values of the inline set p (see makeSmall).
func smallValues(p *uint64) []cid.CID {
	return unsafe.Slice((*cid.CID)(unsafe.Add(unsafe.Pointer(p), 8)), *p)
}

// values returns m's inline values, or nil with the tree when the set is
// large: one load of each pointer, so the caller sees one whole set.
func (m *multi) values() ([]cid.CID, *btree.BTreeG[cid.CID]) {
	if p := m.small.Load(); p != nil {
		return smallValues(p), nil
	}
	return nil, m.tree.Load()
}

// valueDegree is the B-tree degree of large value sets. Smaller nodes keep
// the copy-on-write cost of one update (a root-to-leaf path) low.
const valueDegree = 16

func lessCID(a, b cid.CID) bool { return cid.Less(a, b) }

func (r *record) isMulti() bool { return r.one == cid.Zero }

// asMulti returns the multi r heads. Only valid when r.isMulti(): such a
// record is always the first field of a multi allocation, so the conversion
// follows rule (1) of package unsafe.
func (r *record) asMulti() *multi { return (*multi)(unsafe.Pointer(r)) }

func newSingle(k, v cid.CID) *record { return &record{key: k, one: v} }

// newSmall publishes a sorted slice of at least two values (copied).
func newSmall(k cid.CID, vals []cid.CID) *record {
	r, dst := newSmallN(k, len(vals))
	copy(dst, vals)
	return r
}

// newSmallN returns a record of an inline set of n values and the values,
// for the caller to fill (sorted) before it publishes the record.
func newSmallN(k cid.CID, n int) (*record, []cid.CID) {
	m := &multi{record: record{key: k}}
	p, vals := makeSmall(n)
	m.small.Store(p)
	return &m.record, vals
}

func newTree(k cid.CID, t *btree.BTreeG[cid.CID]) *record {
	m := &multi{record: record{key: k}}
	m.tree.Store(t)
	return &m.record
}

// newSmallSet returns a record of the inline set p (see makeSmall).
func newSmallSet(k cid.CID, p *uint64) *record {
	m := &multi{record: record{key: k}}
	m.small.Store(p)
	return &m.record
}

// count returns the number of values in r.
func (r *record) count() int {
	if !r.isMulti() {
		return 1
	}
	vals, t := r.asMulti().values()
	if t != nil {
		return t.Len()
	}
	return len(vals)
}

// linearMax is the longest sorted slice search scans from the start
// rather than halving: a small set is usually not in cache, and a scan
// reads its lines in order, which the hardware prefetches, where a binary
// search waits for one miss after another; the copy that follows an
// insert then finds them in cache.
const linearMax = 32

// search returns the index of v in the sorted slice s and whether it is there.
func search(s []cid.CID, v cid.CID) (int, bool) {
	if len(s) <= linearMax {
		for i := range s {
			if c := cid.Compare(s[i], v); c >= 0 {
				return i, c == 0
			}
		}
		return len(s), false
	}
	i := sort.Search(len(s), func(i int) bool { return !cid.Less(s[i], v) })
	return i, i < len(s) && s[i] == v
}

// contains reports whether v is one of r's values.
func (r *record) contains(v cid.CID) bool {
	if !r.isMulti() {
		return r.one == v
	}
	vals, t := r.asMulti().values()
	if t != nil {
		return t.Has(v)
	}
	_, ok := search(vals, v)
	return ok
}

// appendValues appends r's values to dst in ascending order. The common
// single value is appended here, small enough to inline into a read.
func (r *record) appendValues(dst []cid.CID) []cid.CID {
	if !r.isMulti() {
		return append(dst, r.one)
	}
	return r.asMulti().appendValues(dst)
}

// appendValues appends m's values to dst in ascending order.
func (m *multi) appendValues(dst []cid.CID) []cid.CID {
	vals, t := m.values()
	if t == nil {
		return append(dst, vals...)
	}
	dst = growCIDs(dst, t.Len())
	t.Ascend(func(v cid.CID) bool {
		dst = append(dst, v)
		return true
	})
	return dst
}

// ascend calls fn for each value in ascending order until fn returns false.
func (r *record) ascend(fn func(cid.CID) bool) {
	if !r.isMulti() {
		fn(r.one)
		return
	}
	vals, t := r.asMulti().values()
	if t != nil {
		t.Ascend(btree.ItemIteratorG[cid.CID](fn))
		return
	}
	for _, v := range vals {
		if !fn(v) {
			return
		}
	}
}

func growCIDs(dst []cid.CID, n int) []cid.CID {
	if cap(dst)-len(dst) < n {
		grown := make([]cid.CID, len(dst), len(dst)+n)
		copy(grown, dst)
		return grown
	}
	return dst
}

// insertAt returns a new inline set of vals with v inserted at i.
func insertAt(vals []cid.CID, i int, v cid.CID) *uint64 {
	p, dst := makeSmall(len(vals) + 1)
	copy(dst, vals[:i])
	dst[i] = v
	copy(dst[i+1:], vals[i:])
	return p
}

// removeAt returns a new inline set of vals without vals[i].
func removeAt(vals []cid.CID, i int) *uint64 {
	p, dst := makeSmall(len(vals) - 1)
	copy(dst, vals[:i])
	copy(dst[i:], vals[i+1:])
	return p
}

// treeWith returns a copy-on-write clone of t that holds v too, or nil
// when t already holds v.
func treeWith(t *btree.BTreeG[cid.CID], v cid.CID) *btree.BTreeG[cid.CID] {
	if t.Has(v) {
		return nil
	}
	c := t.Clone()
	c.ReplaceOrInsert(v)
	return c
}

// withValue returns a record holding r's values plus v, or r itself when v
// is already present. r may be nil (no record yet). inlineMax is the largest
// set kept inline.
func withValue(r *record, k, v cid.CID, inlineMax int) *record {
	if r == nil {
		return newSingle(k, v)
	}
	if !r.isMulti() {
		c := cid.Compare(v, r.one)
		if c == 0 {
			return r
		}
		next, vals := newSmallN(k, 2)
		vals[0], vals[1] = r.one, v
		if c < 0 {
			vals[0], vals[1] = v, r.one
		}
		return next
	}
	vals, t := r.asMulti().values()
	if t != nil {
		if t = treeWith(t, v); t == nil {
			return r
		}
		return newTree(k, t)
	}
	i, ok := search(vals, v)
	if ok {
		return r
	}
	if len(vals) >= inlineMax {
		t := btree.NewG(valueDegree, lessCID)
		for _, x := range vals {
			t.ReplaceOrInsert(x)
		}
		t.ReplaceOrInsert(v)
		return newTree(k, t)
	}
	return newSmallSet(k, insertAt(vals, i, v))
}

// addInPlace adds v to m's values by swapping in a new set of the same
// form; the caller holds the shard's lock and has checked that no View can
// hold m. It reports whether the values changed, and ok false when adding
// v needs a change of form (an inline set at inlineMax becomes a tree),
// which only a new record (withValue) can make.
func (m *multi) addInPlace(v cid.CID, inlineMax int) (changed, ok bool) {
	vals, t := m.values()
	if t != nil {
		if t = treeWith(t, v); t == nil {
			return false, true
		}
		m.tree.Store(t)
		return true, true
	}
	i, found := search(vals, v)
	switch {
	case found:
		return false, true
	case len(vals) >= inlineMax:
		return false, false
	}
	m.small.Store(insertAt(vals, i, v))
	return true, true
}

// withoutValue returns a record holding r's values minus v: r itself when v
// is absent, nil when v was the last value.
func withoutValue(r *record, v cid.CID, inlineMax int) *record {
	if !r.isMulti() {
		if r.one == v {
			return nil
		}
		return r
	}
	vals, t := r.asMulti().values()
	if t != nil {
		if !t.Has(v) {
			return r
		}
		t = t.Clone()
		t.Delete(v)
		if t.Len() <= inlineMax/2 {
			return fromTree(r.key, t)
		}
		return newTree(r.key, t)
	}
	i, ok := search(vals, v)
	if !ok {
		return r
	}
	if len(vals) == 2 {
		return newSingle(r.key, vals[1-i])
	}
	return newSmallSet(r.key, removeAt(vals, i))
}

// removeInPlace removes v from m's values by swapping in a new set of the
// same form, under the conditions of addInPlace; ok is false when removing
// v needs a change of form (two values become one, a tree shrinks to half
// of inlineMax), which only withoutValue can make.
func (m *multi) removeInPlace(v cid.CID, inlineMax int) (changed, ok bool) {
	vals, t := m.values()
	if t != nil {
		switch {
		case !t.Has(v):
			return false, true
		case t.Len()-1 <= inlineMax/2:
			return false, false
		}
		t = t.Clone()
		t.Delete(v)
		m.tree.Store(t)
		return true, true
	}
	i, found := search(vals, v)
	switch {
	case !found:
		return false, true
	case len(vals) == 2:
		return false, false
	}
	m.small.Store(removeAt(vals, i))
	return true, true
}

// fromTree converts a value tree back to the inline forms.
func fromTree(k cid.CID, t *btree.BTreeG[cid.CID]) *record {
	switch t.Len() {
	case 0:
		return nil
	case 1:
		v, _ := t.Min()
		return newSingle(k, v)
	}
	r, vals := newSmallN(k, t.Len())
	i := 0
	t.Ascend(func(v cid.CID) bool { vals[i] = v; i++; return true })
	return r
}

// compacted returns r in the representation inlineMax calls for (a large
// tree that now fits inline becomes an inline set), or r itself when it
// already is.
func compacted(r *record, inlineMax int) *record {
	if !r.isMulti() {
		return r
	}
	if t := r.asMulti().tree.Load(); t != nil && t.Len() <= inlineMax {
		return fromTree(r.key, t)
	}
	return r
}

// isTree reports whether r holds a B-tree value set. A record keeps its
// form for life: addInPlace and removeInPlace never change it.
func (r *record) isTree() bool { return r.isMulti() && r.asMulti().tree.Load() != nil }
