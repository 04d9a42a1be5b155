package triples

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/cidstore/cidstore/cid"
)

// Batches publish on helper goroutines; none may outlive its batch.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// model is the reference: a plain map of present triples.
type model = Model

// testCIDs returns n small distinct CIDs, so that random triples share
// components often.
func testCIDs(n int) []cid.CID {
	cs := make([]cid.CID, n)
	for i := range cs {
		cs[i] = cid.FromWords(uint64(i)*0x9e3779b97f4a7c15+1, 0, 0, uint64(i+1))
	}
	return cs
}

func apply(s *Set, ops []Op) int {
	b := s.Prepare(ops)
	b.Lock()
	defer b.Unlock()
	n := b.Resolve()
	b.Publish(0)
	return n
}

func checkAll(t *testing.T, s *Set, m model, cs []cid.CID) {
	t.Helper()
	pick := func(i int) cid.CID {
		if i < 0 {
			return cid.Zero
		}
		return cs[i]
	}
	rng := rand.New(rand.NewPCG(uint64(len(m)), 9))
	for mask := range 8 {
		for range 4 {
			var q [3]cid.CID
			for c := range 3 {
				if mask&(1<<c) != 0 {
					q[c] = pick(rng.IntN(len(cs)))
				}
			}
			got := slices.Collect(s.Query(q[0], q[1], q[2]))
			want := m.Match(q[0], q[1], q[2])
			if !slices.Equal(got, want) {
				t.Fatalf("Query(%d bound, mask %03b): got %d triples, want %d", mask, mask, len(got), len(want))
			}
			if n := s.CountMatches(q[0], q[1], q[2]); n != len(want) {
				t.Fatalf("CountMatches mask %03b = %d, want %d", mask, n, len(want))
			}
		}
	}
	if s.Len() != len(m) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(m))
	}
	st := s.Stats()
	for _, o := range Orders {
		if st[o].Triples != len(m) {
			t.Fatalf("%v holds %d triples, want %d", o, st[o].Triples, len(m))
		}
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestModel(t *testing.T) {
	for _, inline := range []int{1, 4, 32} {
		s, err := New(Options{Shards: 4, Seed: 7, InlineMax: inline})
		if err != nil {
			t.Fatal(err)
		}
		cs := testCIDs(6)
		m := model{}
		rng := rand.New(rand.NewPCG(1, uint64(inline)))
		for step := range 150 {
			ops := RandomOps(1+rng.IntN(40), cs, rng.IntN, 3)
			if got, want := apply(s, ops), m.Apply(ops); got != want {
				t.Fatalf("step %d: changed %d, want %d", step, got, want)
			}
			checkAll(t, s, m, cs)
		}
	}
}

// Readers run lock-free queries while writers apply batches; each reader
// checks what must hold at any moment: a result is sorted and its triples
// match the pattern. Run under -race.
func TestConcurrentReaders(t *testing.T) {
	s, _ := New(Options{Shards: 2, Seed: 3, InlineMax: 4})
	cs := testCIDs(8)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 5))
			for !stop.Load() {
				q := [3]cid.CID{}
				for c := range 3 {
					if rng.IntN(2) == 0 {
						q[c] = cs[rng.IntN(len(cs))]
					}
				}
				var prev *Triple
				for tr := range s.Query(q[0], q[1], q[2]) {
					for c := range 3 {
						if !q[c].IsZero() && tr.comps()[c] != q[c] {
							t.Errorf("triple %v does not match the pattern", tr)
						}
					}
					if prev != nil && *prev == tr {
						t.Errorf("triple %v twice", tr)
					}
					prev = &tr
				}
			}
		}()
	}
	m := model{}
	rng := rand.New(rand.NewPCG(2, 2))
	for range 300 {
		ops := RandomOps(1+rng.IntN(300), cs, rng.IntN, 3)
		apply(s, ops)
		m.Apply(ops)
	}
	stop.Store(true)
	wg.Wait()
	checkAll(t, s, m, cs)
}

// With the map hash narrowed to 4 bits most keys collide and live in the
// overflow map; the model must still agree.
func TestModelHashCollisions(t *testing.T) {
	s, _ := New(Options{Shards: 1, Seed: 1, InlineMax: 2})
	for _, o := range Orders {
		s.idx[o][0].hashMask = 0xf
	}
	cs := testCIDs(40)
	m := model{}
	rng := rand.New(rand.NewPCG(4, 4))
	for range 60 {
		ops := RandomOps(1+rng.IntN(50), cs, rng.IntN, 4)
		apply(s, ops)
		m.Apply(ops)
		checkAll(t, s, m, cs)
	}
}

// A bulk load, with duplicates and dropped triples, gives the set that
// batches give.
func TestLoad(t *testing.T) {
	for _, inline := range []int{2, 32} {
		cs := testCIDs(30)
		rng := rand.New(rand.NewPCG(8, uint64(inline)))
		m := model{}
		s, _ := New(Options{Shards: 4, Seed: 5, InlineMax: inline})
		l := s.NewLoader()
		for range 3000 {
			tr := Triple{cs[rng.IntN(len(cs))], cs[rng.IntN(5)], cs[rng.IntN(len(cs))]}
			l.Add(tr)
			m[tr] = true
		}
		drop := func(t *Triple) bool { return t.S == cs[3] }
		for tr := range m {
			if drop(&tr) {
				delete(m, tr)
			}
		}
		l.SetDrop(drop)
		if err := s.Load(l, 9); err != nil {
			t.Fatal(err)
		}
		checkAll(t, s, m, cs)
		if err := s.Load(s.NewLoader(), 9); err == nil {
			t.Fatal("Load into a non-empty set succeeded")
		}
	}
}

// The audit finds triples missing from one index or present in one only,
// and settles them by majority; a damaged SPO key index is rebuilt.
func TestAudit(t *testing.T) {
	s, _ := New(Options{Shards: 4, Seed: 2, InlineMax: 2})
	cs := testCIDs(20)
	m := model{}
	rng := rand.New(rand.NewPCG(6, 6))
	ops := make([]Op, 400)
	for i := range ops {
		ops[i] = Op{Triple: Triple{cs[rng.IntN(20)], cs[rng.IntN(4)], cs[rng.IntN(20)]}}
	}
	apply(s, ops)
	m.Apply(ops)
	never := func() bool { return false }
	if res := s.Audit(never); res.Mismatches != 0 || res.Checked != 3*len(m) {
		t.Fatalf("clean set: %+v, want %d checked", res, 3*len(m))
	}
	// Damage: drop a triple from POS, add a stray one to OSP only, and
	// unlink an SPO record from its B-tree.
	var victim Triple
	for tr := range m {
		victim = tr
		break
	}
	damage := func(o Order, tr Triple, del bool) {
		k := o.key(&tr)
		h := s.hash(k)
		sh := s.shardOf(o, h)
		sh.mu.Lock()
		sh.apply(k, h, []change{{v: o.val(&tr), rec: &tr, del: del}})
		sh.mu.Unlock()
	}
	damage(POS, victim, true)
	stray := Triple{cs[0], cs[19], cs[1]}
	damage(OSP, stray, false)
	spo := s.shardOf(SPO, s.hash(victim.S))
	spo.mu.Lock()
	spo.index.Delete(SPO.itemOf(spo.lookup(victim.S, s.hash(victim.S))))
	spo.mu.Unlock()
	if s.Check() == nil {
		t.Fatal("Check missed the damage")
	}
	res := s.Audit(never)
	if res.Mismatches < 3 || res.Repaired < 3 {
		t.Fatalf("audit of a damaged set: %+v", res)
	}
	checkAll(t, s, m, cs)
}
