package triples

import "github.com/cidstore/cidstore/cid"

// Model is a plain Go map of the triples present: the reference against
// which the tests of this package and of the store check a Set. It is
// slow (Match scans everything) and not safe for concurrent use.
type Model map[Triple]bool

// Apply applies ops in order and returns how many changed the set.
func (m Model) Apply(ops []Op) (changed int) {
	for _, op := range ops {
		if m[op.Triple] == op.Delete {
			changed++
		}
		if op.Delete {
			delete(m, op.Triple)
		} else {
			m[op.Triple] = true
		}
	}
	return changed
}

// Match returns the triples that match the pattern (zero CIDs are
// wildcards) in the order Query yields them.
func (m Model) Match(s, p, o cid.CID) []Triple {
	var out []Triple
	for t := range m {
		if Matches(t, s, p, o) {
			out = append(out, t)
		}
	}
	SortLike(out, s, p, o)
	return out
}

// RandomOps returns n operations whose components are drawn from cs by
// pick (which returns an int below its argument), one in del a delete.
func RandomOps(n int, cs []cid.CID, pick func(int) int, del int) []Op {
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = Op{Delete: pick(del) == 0, Triple: Triple{S: cs[pick(len(cs))], P: cs[pick(len(cs))], O: cs[pick(len(cs))]}}
	}
	return ops
}
