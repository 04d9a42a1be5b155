package shard

import (
	"sort"
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
type multi struct {
	record
	small []cid.CID              // sorted values, when tree == nil
	tree  *btree.BTreeG[cid.CID] // values, when the set is large
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

// newSmall publishes a sorted slice of at least two values; it takes
// ownership of vals.
func newSmall(k cid.CID, vals []cid.CID) *record {
	m := &multi{record: record{key: k}, small: vals}
	return &m.record
}

func newTree(k cid.CID, t *btree.BTreeG[cid.CID]) *record {
	m := &multi{record: record{key: k}, tree: t}
	return &m.record
}

// count returns the number of values in r.
func (r *record) count() int {
	if !r.isMulti() {
		return 1
	}
	m := r.asMulti()
	if m.tree != nil {
		return m.tree.Len()
	}
	return len(m.small)
}

// search returns the index of v in the sorted slice s and whether it is there.
func search(s []cid.CID, v cid.CID) (int, bool) {
	i := sort.Search(len(s), func(i int) bool { return !cid.Less(s[i], v) })
	return i, i < len(s) && s[i] == v
}

// contains reports whether v is one of r's values.
func (r *record) contains(v cid.CID) bool {
	if !r.isMulti() {
		return r.one == v
	}
	m := r.asMulti()
	if m.tree != nil {
		return m.tree.Has(v)
	}
	_, ok := search(m.small, v)
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
	if m.tree == nil {
		return append(dst, m.small...)
	}
	dst = growCIDs(dst, m.tree.Len())
	m.tree.Ascend(func(v cid.CID) bool {
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
	m := r.asMulti()
	if m.tree != nil {
		m.tree.Ascend(btree.ItemIteratorG[cid.CID](fn))
		return
	}
	for _, v := range m.small {
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

// withValue returns a record holding r's values plus v, or r itself when v
// is already present. r may be nil (no record yet). inlineMax is the largest
// set kept as a slice.
func withValue(r *record, k, v cid.CID, inlineMax int) *record {
	if r == nil {
		return newSingle(k, v)
	}
	if !r.isMulti() {
		switch c := cid.Compare(v, r.one); {
		case c == 0:
			return r
		case c < 0:
			return newSmall(k, []cid.CID{v, r.one})
		default:
			return newSmall(k, []cid.CID{r.one, v})
		}
	}
	m := r.asMulti()
	if m.tree != nil {
		if m.tree.Has(v) {
			return r
		}
		t := m.tree.Clone()
		t.ReplaceOrInsert(v)
		return newTree(k, t)
	}
	i, ok := search(m.small, v)
	if ok {
		return r
	}
	if len(m.small) >= inlineMax {
		t := btree.NewG(valueDegree, lessCID)
		for _, x := range m.small {
			t.ReplaceOrInsert(x)
		}
		t.ReplaceOrInsert(v)
		return newTree(k, t)
	}
	vals := make([]cid.CID, len(m.small)+1)
	copy(vals, m.small[:i])
	vals[i] = v
	copy(vals[i+1:], m.small[i:])
	return newSmall(k, vals)
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
	m := r.asMulti()
	if m.tree != nil {
		if !m.tree.Has(v) {
			return r
		}
		t := m.tree.Clone()
		t.Delete(v)
		if t.Len() <= inlineMax/2 {
			return fromTree(r.key, t)
		}
		return newTree(r.key, t)
	}
	i, ok := search(m.small, v)
	if !ok {
		return r
	}
	if len(m.small) == 2 {
		return newSingle(r.key, m.small[1-i])
	}
	vals := make([]cid.CID, 0, len(m.small)-1)
	vals = append(vals, m.small[:i]...)
	vals = append(vals, m.small[i+1:]...)
	return newSmall(r.key, vals)
}

// fromTree converts a value tree back to the inline forms.
func fromTree(k cid.CID, t *btree.BTreeG[cid.CID]) *record {
	vals := make([]cid.CID, 0, t.Len())
	t.Ascend(func(v cid.CID) bool { vals = append(vals, v); return true })
	switch len(vals) {
	case 0:
		return nil
	case 1:
		return newSingle(k, vals[0])
	}
	return newSmall(k, vals)
}

// compacted returns r in the representation inlineMax calls for (a large
// tree that now fits inline becomes a slice), or r itself when it already
// is.
func compacted(r *record, inlineMax int) *record {
	if !r.isMulti() {
		return r
	}
	m := r.asMulti()
	if m.tree != nil && m.tree.Len() <= inlineMax {
		return fromTree(r.key, m.tree)
	}
	return r
}

func (m *multi) isTree() bool { return m.tree != nil }

// isTree reports whether r holds a B-tree value set.
func (r *record) isTree() bool { return r.isMulti() && r.asMulti().isTree() }
