package store

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

func tri(s, p, o cid.CID) Triple { return Triple{S: s, P: p, O: o} }

// randomTripleOps returns n operations over c small CIDs, so that
// subjects, predicates and objects repeat and value sets change shape.
func randomTripleOps(rng *rand.Rand, n, c int) []TripleOp {
	ops := make([]TripleOp, n)
	for i := range ops {
		ops[i] = TripleOp{Delete: rng.IntN(3) == 0, Triple: tri(w(1+rng.Uint64N(uint64(c))), w(1+rng.Uint64N(uint64(c/2+1))), w(1+rng.Uint64N(uint64(c))))}
	}
	return ops
}

// TestTripleModel applies random batches, single inserts and deletes to
// a store while readers query it, and compares every pattern with the
// model after each step. Run under -race: readers take no lock.
func TestTripleModel(t *testing.T) {
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 11))
		s := openMem(t, Options{Shards: []int{1, 2, 8}[seed], Config: withConfig(func(c *Config) { c.InlineValues = 1 + int(seed*3) })})
		var stop atomic.Bool
		var wg sync.WaitGroup
		for r := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rr := rand.New(rand.NewPCG(uint64(r), seed))
				for !stop.Load() {
					q := randomTripleOps(rr, 1, 12)[0].Triple
					if rr.IntN(2) == 0 {
						q.P = cid.Zero
					}
					for tr := range s.Query(q.S, q.P, cid.Zero) {
						if tr.S != q.S || (!q.P.IsZero() && tr.P != q.P) {
							t.Errorf("Query(%v, %v, ?) yielded %v", q.S, q.P, tr)
						}
					}
					s.HasTriple(q)
				}
			}()
		}
		m := tripleModel{}
		for step := range 60 {
			ops := randomTripleOps(rng, 1+rng.IntN(30), 12)
			var got int
			var err error
			switch {
			case len(ops) == 1 && ops[0].Delete:
				err = s.DeleteTriple(ops[0].Triple)
				got = -1
			case len(ops) == 1:
				err = s.InsertTriple(ops[0].Triple)
				got = -1
			default:
				got, err = s.ApplyTriples(ops)
			}
			want := m.Apply(ops)
			if err != nil || (got >= 0 && got != want) {
				t.Fatalf("seed %d step %d: changed %d, %v; want %d", seed, step, got, err, want)
			}
			checkTriples(t, s, m, 12)
		}
		stop.Store(true)
		wg.Wait()
		if s.Len() != 0 {
			t.Fatalf("triples show up as %d pair keys", s.Len())
		}
	}
}

func TestTripleAPI(t *testing.T) {
	s := openMem(t, Options{})
	a, b, c := w(1), w(2), w(3)
	for _, bad := range []Triple{tri(cid.Zero, b, c), tri(a, cid.Zero, c), tri(a, b, cid.Zero)} {
		if err := s.InsertTriple(bad); !errors.Is(err, ErrInvalidCID) {
			t.Fatalf("InsertTriple(%v) = %v", bad, err)
		}
		if _, err := s.InsertTriples([]Triple{tri(a, b, c), bad}); !errors.Is(err, ErrInvalidCID) {
			t.Fatalf("InsertTriples with a zero CID = %v", err)
		}
	}
	if s.TripleCount() != 0 {
		t.Fatal("a rejected batch was applied in part")
	}
	if _, err := s.ApplyTriples(make([]TripleOp, MaxTripleBatch+1)); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("oversized batch: %v", err)
	}
	n, err := s.InsertTriples([]Triple{tri(a, b, c), tri(a, b, c), tri(a, c, b)})
	if n != 2 || err != nil {
		t.Fatalf("InsertTriples = %d, %v; want 2 (a duplicate counts once)", n, err)
	}
	if n, _ := s.DeleteTriples([]Triple{tri(a, b, c), tri(c, b, a)}); n != 1 {
		t.Fatalf("DeleteTriples removed %d, want 1", n)
	}
	st := s.Stats()
	if st.Triples != 1 || len(st.TripleIndexes) != 3 || st.TripleIndexes[1].Keys != 1 || st.TripleOps.Inserts != 2 || st.TripleOps.Deletes != 1 {
		t.Fatalf("stats: %d triples, %+v, %+v", st.Triples, st.TripleIndexes, st.TripleOps)
	}
	var prom bytes.Buffer
	must(t, s.WritePrometheus(&prom))
	for _, want := range []string{"cidstore_triples 1\n", `cidstore_triple_index_keys{index="OSP"} 1`, `cidstore_triple_ops_total{op="delete"} 1`} {
		if !bytes.Contains(prom.Bytes(), []byte(want)) {
			t.Fatalf("Prometheus output lacks %q", want)
		}
	}
	if n, err := s.Audit(context.Background()); n != 0 || err != nil {
		t.Fatalf("Audit of a sound store: %d, %v", n, err)
	}
	// Pairs and triples never see each other's entries.
	must(t, s.Insert(a, b))
	if s.Count(a) != 1 || s.TripleCount() != 1 || s.CountTriples(a, cid.Zero, cid.Zero) != 1 {
		t.Fatalf("pairs and triples mixed: Count %d, TripleCount %d", s.Count(a), s.TripleCount())
	}
	must(t, s.Close())
	if err := s.InsertTriple(tri(a, b, c)); !errors.Is(err, ErrClosed) {
		t.Fatalf("InsertTriple after Close = %v", err)
	}
	if s.HasTriple(tri(a, c, b)) || len(slices.Collect(s.Query(a, cid.Zero, cid.Zero))) != 0 {
		t.Fatal("reads after Close see triples")
	}
}

// Triples survive Close and reopen from the WAL alone, from a snapshot
// plus WAL (folded into the bulk load or replayed one by one), and an
// export imported into a new store.
func TestTriplePersist(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	s := openDir(t, dir, Options{SegmentSize: 4096, Config: withConfig(func(c *Config) { c.InlineValues = 3 })})
	m := tripleModel{}
	step := func(n int) {
		for range n {
			ops := randomTripleOps(rng, 1+rng.IntN(12), 14)
			if _, err := s.ApplyTriples(ops); err != nil {
				t.Fatal(err)
			}
			m.Apply(ops)
		}
		must(t, s.Insert(w(99), w(rng.Uint64N(5)+1)))
	}
	step(100)
	must(t, s.Close())
	s = openDir(t, dir, Options{})
	checkTriples(t, s, m, 14)
	step(100)
	must(t, s.Checkpoint(context.Background()))
	if c := s.Stats().Checkpoints; c.LastTriples != int64(len(m)) {
		t.Fatalf("checkpoint holds %d triples, want %d", c.LastTriples, len(m))
	}
	step(150)
	must(t, s.Close())
	defer func(old int64) { mergeOpsMax = old }(mergeOpsMax)
	for _, budget := range []int64{1 << 22, 0, 5} {
		mergeOpsMax = budget
		r := openDir(t, dir, Options{})
		if rec := r.Stats().Recovery; rec.SnapshotTriples == 0 || rec.Records == 0 {
			t.Fatalf("budget %d: recovery %+v", budget, rec)
		}
		checkTriples(t, r, m, 14)
		var buf bytes.Buffer
		if _, err := r.Export(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		must(t, r.Close())
		imp := openDir(t, t.TempDir(), Options{})
		sum, err := imp.Import(context.Background(), &buf)
		if err != nil || sum.Triples != int64(len(m)) {
			t.Fatalf("import: %v, %d triples", err, sum.Triples)
		}
		checkTriples(t, imp, m, 14)
		if imp.Count(w(99)) == 0 {
			t.Fatal("import lost the pairs")
		}
		must(t, imp.Close())
	}
}

// Restore replaces the triples too, durably, and a View exports them.
func TestTripleRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	src := openMem(t, Options{})
	m := tripleModel{}
	ops := randomTripleOps(rng, 300, 14)
	if _, err := src.ApplyTriples(ops); err != nil {
		t.Fatal(err)
	}
	m.Apply(ops)
	must(t, src.Insert(w(1), w(2)))
	v, err := src.View()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.InsertTriples([]Triple{tri(w(90), w(91), w(92))}); err != nil {
		t.Fatal(err) // after the view: not in it
	}
	var buf bytes.Buffer
	if sum, err := v.Export(context.Background(), &buf); err != nil || sum.Triples != int64(len(m)) {
		t.Fatalf("view export: %v, %d triples, want %d", err, sum.Triples, len(m))
	}
	dir := t.TempDir()
	dst := openDir(t, dir, Options{})
	if _, err := dst.ApplyTriples(randomTripleOps(rng, 200, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Restore(context.Background(), bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	checkTriples(t, dst, m, 14)
	if err := dst.triples.Check(); err != nil {
		t.Fatal(err)
	}
	must(t, dst.Close())
	dst = openDir(t, dir, Options{})
	defer dst.Close()
	checkTriples(t, dst, m, 14)
	if dst.Count(w(1)) != 1 {
		t.Fatal("the restore lost the pairs")
	}
}
