package triples

import (
	"slices"
	"unsafe"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
)

// A record is the immutable state of one key of an index, published as a
// *Triple:
//
//   - a key with one value is the triple itself. The same allocation is
//     published by every index in which its key has no other value, which
//     for random triples is all three: one 96-byte object serves SPO, POS
//     and OSP;
//   - a key with two or more values is a multi. Its head is a Triple with
//     the key in the index's position and the zero CID in the two others;
//     since no stored triple has a zero component, a zero second
//     component tells the kinds apart.
//
// Records are never modified once published: a writer builds a new one.
type multi struct {
	head  Triple
	small []pair              // sorted values, when tree == nil
	tree  *btree.BTreeG[pair] // values, when the set is large
}

// valueDegree is the B-tree degree of large value sets: a node holds up
// to 31 pairs (2 KiB), so the copy-on-write path of an update stays small.
const valueDegree = 16

func (o Order) isMulti(r *Triple) bool { return r.comps()[(o+1)%3].IsZero() }

// asMulti returns the multi r heads. Only valid when o.isMulti(r): such a
// record is always the first field of a multi allocation, so the
// conversion follows rule (1) of package unsafe.
func asMulti(r *Triple) *multi { return (*multi)(unsafe.Pointer(r)) }

func (o Order) newMulti(k cid.CID, small []pair, tree *btree.BTreeG[pair]) *Triple {
	m := &multi{small: small, tree: tree}
	m.head.comps()[o] = k
	return &m.head
}

// count returns the number of values of r.
func (o Order) count(r *Triple) int {
	if !o.isMulti(r) {
		return 1
	}
	if m := asMulti(r); m.tree != nil {
		return m.tree.Len()
	} else {
		return len(m.small)
	}
}

func (o Order) isTree(r *Triple) bool { return o.isMulti(r) && asMulti(r).tree != nil }

// searchPairs returns the index of the first value >= v in s and whether
// it is v.
func searchPairs(s []pair, v pair) (int, bool) {
	return slices.BinarySearchFunc(s, v, comparePair)
}

// contains reports whether v is one of r's values.
func (o Order) contains(r *Triple, v pair) bool {
	if !o.isMulti(r) {
		return o.val(r) == v
	}
	m := asMulti(r)
	if m.tree != nil {
		return m.tree.Has(v)
	}
	_, ok := searchPairs(m.small, v)
	return ok
}

// ascend calls fn for r's values in ascending order, starting at the first
// one whose first CID is first (all values when first is zero) and ending
// after the last one with that first CID, or when fn returns false.
func (o Order) ascend(r *Triple, first cid.CID, fn func(pair) bool) {
	in := func(v pair) bool { return first.IsZero() || v[0] == first }
	if !o.isMulti(r) {
		if v := o.val(r); in(v) {
			fn(v)
		}
		return
	}
	m := asMulti(r)
	from := pair{first, cid.Zero}
	if m.tree != nil {
		m.tree.AscendGreaterOrEqual(from, func(v pair) bool { return in(v) && fn(v) })
		return
	}
	i, _ := searchPairs(m.small, from)
	for _, v := range m.small[i:] {
		if !in(v) || !fn(v) {
			return
		}
	}
}

// appendValues appends r's values to dst in ascending order.
func (o Order) appendValues(dst []pair, r *Triple) []pair {
	if !o.isMulti(r) {
		return append(dst, o.val(r))
	}
	m := asMulti(r)
	if m.tree == nil {
		return append(dst, m.small...)
	}
	dst = slices.Grow(dst, m.tree.Len())
	m.tree.Ascend(func(v pair) bool { dst = append(dst, v); return true })
	return dst
}

// change is one value to add to or remove from a key.
type change struct {
	v   pair
	rec *Triple // for an add: the triple's shared record
	del bool
}

// update returns the record of key k after applying changes (distinct
// values, in any order; update may reorder them) to prev (nil: no
// record), and how many values it gained (a negative number when it lost
// some). Adding a present value or removing an absent one changes
// nothing. The result is nil when no value is left, and prev itself when
// nothing changed. A key left with a single value publishes that
// triple's shared record when there is one.
func (o Order) update(prev *Triple, k cid.CID, changes []change, inlineMax int) (*Triple, int) {
	if prev == nil && len(changes) == 1 && !changes[0].del && changes[0].rec != nil {
		return changes[0].rec, 1 // the common case: a new key
	}
	if prev != nil && o.isTree(prev) {
		return o.updateTree(prev, k, changes, inlineMax)
	}
	var old []pair
	if prev != nil {
		old = o.appendValues(make([]pair, 0, o.count(prev)), prev)
	}
	if len(changes) > 1 {
		slices.SortFunc(changes, func(a, b change) int { return comparePair(a.v, b.v) })
	}
	// Merge the old values with the changes, both ascending.
	vals := make([]pair, 0, len(old)+len(changes))
	effective := 0
	for i, j := 0, 0; i < len(old) || j < len(changes); {
		c := 1 // compare old[i] with changes[j]; past an end, the other wins
		switch {
		case i == len(old):
			c = 1
		case j == len(changes):
			c = -1
		default:
			c = comparePair(old[i], changes[j].v)
		}
		switch {
		case c < 0:
			vals = append(vals, old[i])
			i++
		case c > 0:
			if !changes[j].del {
				vals = append(vals, changes[j].v)
				effective++
			}
			j++
		default:
			if changes[j].del {
				effective++
			} else {
				vals = append(vals, old[i])
			}
			i++
			j++
		}
	}
	if effective == 0 && prev != nil {
		return prev, 0
	}
	delta := len(vals) - len(old)
	switch len(vals) {
	case 0:
		return nil, delta
	case 1:
		if prev != nil && !o.isMulti(prev) && o.val(prev) == vals[0] {
			return prev, delta
		}
		for _, c := range changes {
			if !c.del && c.v == vals[0] && c.rec != nil {
				return c.rec, delta
			}
		}
	}
	return o.fromSorted(k, vals, inlineMax), delta
}

// updateTree is update for a record whose values are a B-tree: one
// copy-on-write clone takes all of changes, so a batch of n changes to a
// key of m values costs O(n log m) however large m is, never a copy of
// the set.
func (o Order) updateTree(prev *Triple, k cid.CID, changes []change, inlineMax int) (*Triple, int) {
	old := asMulti(prev).tree
	t := old.Clone()
	effective := 0
	for _, c := range changes {
		var found bool
		if c.del {
			_, found = t.Delete(c.v)
		} else {
			_, found = t.ReplaceOrInsert(c.v)
			found = !found
		}
		if found {
			effective++
		}
	}
	delta := t.Len() - old.Len()
	switch {
	case effective == 0:
		return prev, 0
	case t.Len() > inlineMax/2:
		return o.newMulti(k, nil, t), delta
	}
	vals := make([]pair, 0, t.Len())
	t.Ascend(func(v pair) bool { vals = append(vals, v); return true })
	if len(vals) == 0 {
		return nil, delta
	}
	return o.fromSorted(k, vals, inlineMax), delta
}

// fromSorted builds a new record of key k from ascending, distinct,
// non-empty vals, which it takes ownership of.
func (o Order) fromSorted(k cid.CID, vals []pair, inlineMax int) *Triple {
	switch {
	case len(vals) == 1:
		t := o.join(k, vals[0])
		return &t
	case len(vals) <= inlineMax:
		return o.newMulti(k, vals, nil)
	}
	t := btree.NewG(valueDegree, lessPair)
	for _, v := range vals {
		t.ReplaceOrInsert(v)
	}
	return o.newMulti(k, nil, t)
}
