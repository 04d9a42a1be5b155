package bench

import (
	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// TriplePredicates is the number of distinct predicates the triple target
// uses: few, as in real data, so each is a hot key of the POS index.
const TriplePredicates = 16

// TripleTarget opens a CIDStore on dir ("" for in memory) with opts and
// drives its triple API with the pair workload: key k and value v become
// the triple (k, p, v), where p is one of TriplePredicates predicates
// picked by v. Reads are S?? queries (Query(k, Zero, Zero)), inserts
// InsertTriple or InsertTriples, deletes DeleteTriple, so every write
// changes all three indexes and "heap B/pair" is heap bytes per triple.
func TripleTarget(dir string, opts store.Options) Opener {
	open := StoreTarget(dir, opts)
	return func() (Target, error) {
		t, err := open()
		if err != nil {
			return nil, err
		}
		return &tripleAdapter{s: t.(*StoreAdapter).S}, nil
	}
}

type tripleAdapter struct{ s *store.Store }

// triple maps a workload pair to its triple.
func triple(k, v cid.CID) store.Triple {
	return store.Triple{S: k, P: Key(1<<62 + v.Hash(0)%TriplePredicates), O: v}
}

func (t *tripleAdapter) Name() string { return "CIDStore-triples" }
func (t *tripleAdapter) AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error) {
	for tr := range t.s.Query(k, cid.Zero, cid.Zero) {
		dst = append(dst, tr.O)
	}
	return dst, nil
}
func (t *tripleAdapter) Insert(k, v cid.CID) error { return t.s.InsertTriple(triple(k, v)) }
func (t *tripleAdapter) InsertBatch(pairs []Pair) error {
	ts := make([]store.Triple, len(pairs))
	for i, p := range pairs {
		ts[i] = triple(p.Key, p.Value)
	}
	_, err := t.s.InsertTriples(ts)
	return err
}
func (t *tripleAdapter) Delete(k, v cid.CID) error { return t.s.DeleteTriple(triple(k, v)) }
func (t *tripleAdapter) Close() error              { return t.s.Close() }

// IsCIDStore reports whether a target name is a CIDStore (pairs or
// triples) rather than a baseline or a peer.
func IsCIDStore(target string) bool { return target == "CIDStore" || target == "CIDStore-triples" }
