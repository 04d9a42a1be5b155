package triples

import (
	"unsafe"

	"github.com/cidstore/cidstore/cid"
)

// Triple is one (subject, predicate, object) statement. None of its
// components may be the zero CID.
type Triple struct{ S, P, O cid.CID }

// Op is one change of an atomic batch: insert the triple, or delete it.
type Op struct {
	Delete bool
	Triple
}

// Order names an index by the rotation of a triple it stores: the first
// component is the key, the other two, in this order, form the value.
type Order uint8

// The three indexes.
const (
	SPO Order = iota // key S, values (P, O)
	POS              // key P, values (O, S)
	OSP              // key O, values (S, P)
)

// Orders lists the indexes in lock order.
var Orders = [3]Order{SPO, POS, OSP}

func (o Order) String() string {
	switch o {
	case SPO:
		return "SPO"
	case POS:
		return "POS"
	case OSP:
		return "OSP"
	}
	return "Order(?)"
}

// comps views t as its three components, S, P, O. A Triple is three
// CIDs back to back with no padding.
func (t *Triple) comps() *[3]cid.CID { return (*[3]cid.CID)(unsafe.Pointer(t)) }

// pair is a value of an index: the second and third components of a
// triple in the index's rotation. Pairs sort by their first CID, then
// their second.
type pair [2]cid.CID

func comparePair(a, b pair) int {
	if c := cid.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return cid.Compare(a[1], b[1])
}

func lessPair(a, b pair) bool { return comparePair(a, b) < 0 }

// key returns the key of t in order o.
func (o Order) key(t *Triple) cid.CID { return t.comps()[o] }

// val returns the value of t in order o.
func (o Order) val(t *Triple) pair {
	c := t.comps()
	return pair{c[(o+1)%3], c[(o+2)%3]}
}

// join returns the triple whose key in order o is k and whose value is v.
func (o Order) join(k cid.CID, v pair) Triple {
	var t Triple
	c := t.comps()
	c[o], c[(o+1)%3], c[(o+2)%3] = k, v[0], v[1]
	return t
}

// unsafeFlatten views a non-empty slice of pairs as the CIDs they hold.
func unsafeFlatten(ps []pair) []cid.CID {
	return unsafe.Slice(&ps[0][0], 2*len(ps))
}
