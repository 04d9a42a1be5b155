package shard

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/cidstore/cidstore/cid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecordIs64Bytes(t *testing.T) {
	if got := unsafe.Sizeof(record{}); got != 64 {
		t.Fatalf("record is %d bytes, want 64", got)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		o  Options
		ok bool
	}{
		{Options{}, true},
		{Options{InlineMax: 1}, true},
		{Options{InlineMax: MaxInlineMax}, true},
		{Options{InlineMax: -1}, false},
		{Options{InlineMax: MaxInlineMax + 1}, false},
		{Options{Presize: -1}, false},
		{Options{Presize: 1000}, true},
	}
	for _, tt := range tests {
		_, err := New(tt.o)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidOptions)) {
			t.Errorf("New(%+v) = %v", tt.o, err)
		}
	}
}

// Every representation transition (single, slice, tree and back) against a
// sorted-slice model.
func TestValueSetTransitions(t *testing.T) {
	for _, inline := range []int{1, 2, 4, 32} {
		s := newShard(t, inline)
		k := w(7)
		var model []cid.CID
		rng := rand.New(rand.NewPCG(1, uint64(inline)))
		s.Lock()
		for step := 0; step < 3000; step++ {
			v := w(1 + rng.Uint64N(100))
			i, found := slices.BinarySearchFunc(model, v, cid.Compare)
			if rng.IntN(3) > 0 {
				if got := s.Add(k, v); got == found {
					t.Fatalf("inline %d step %d: Add changed=%v, present=%v", inline, step, got, found)
				}
				if !found {
					model = slices.Insert(model, i, v)
				}
			} else {
				if got := s.Remove(k, v); got != found {
					t.Fatalf("inline %d step %d: Remove changed=%v, present=%v", inline, step, got, found)
				}
				if found {
					model = slices.Delete(model, i, i+1)
				}
			}
			if got := s.AppendValues(nil, k); !slices.Equal(got, model) {
				t.Fatalf("inline %d step %d: values %v, want %v", inline, step, got, model)
			}
			if s.Count(k) != len(model) || s.Pairs() != len(model) || s.Keys() != min(len(model), 1) {
				t.Fatalf("inline %d step %d: counts %d/%d/%d, want %d", inline, step, s.Count(k), s.Pairs(), s.Keys(), len(model))
			}
			if len(model) > 0 && !s.Contains(k, model[0]) {
				t.Fatalf("Contains missed a value")
			}
		}
		s.Unlock()
	}
}

// With the hash narrowed to 3 bits nearly every key collides, so keys move
// through the overflow map; the shard must still behave like a map of sets.
func TestHashCollisions(t *testing.T) {
	s := newShard(t, 2)
	s.hashMask = 7
	model := map[cid.CID]map[cid.CID]bool{}
	rng := rand.New(rand.NewPCG(3, 3))
	s.Lock()
	defer s.Unlock()
	for step := 0; step < 5000; step++ {
		k, v := w(1+rng.Uint64N(60)), w(1+rng.Uint64N(5))
		switch rng.IntN(4) {
		case 0, 1:
			s.Add(k, v)
			if model[k] == nil {
				model[k] = map[cid.CID]bool{}
			}
			model[k][v] = true
		case 2:
			s.Remove(k, v)
			if delete(model[k], v); len(model[k]) == 0 {
				delete(model, k)
			}
		case 3:
			s.RemoveKey(k)
			delete(model, k)
		}
		for i := uint64(1); i <= 60; i++ {
			if got, want := s.Count(w(i)), len(model[w(i)]); got != want {
				t.Fatalf("step %d: Count(%d) = %d, want %d", step, i, got, want)
			}
		}
		if s.Keys() != len(model) || s.View().Len() != len(model) {
			t.Fatalf("step %d: %d keys, index %d, want %d", step, s.Keys(), s.View().Len(), len(model))
		}
	}
	if s.nOverflow.Load() == 0 {
		t.Fatal("test never exercised the overflow map")
	}
}

func TestRemoveKeyAndView(t *testing.T) {
	s := newShard(t, 4)
	s.Lock()
	for i := uint64(1); i <= 100; i++ {
		for j := uint64(1); j <= i%7+1; j++ {
			s.Add(w(i), w(j))
		}
	}
	v := s.View()
	if n := s.RemoveKey(w(50)); n != 50%7+1 {
		t.Fatalf("RemoveKey returned %d", n)
	}
	if n := s.RemoveKey(w(50)); n != 0 {
		t.Fatalf("second RemoveKey returned %d", n)
	}
	s.Add(w(1000), w(1))
	s.Unlock()

	// The view still shows the state at the time it was taken.
	if v.Len() != 100 {
		t.Fatalf("view has %d keys, want 100", v.Len())
	}
	var keys []uint64
	v.Ascend(nil, nil, func(e Entry) bool {
		_, _, _, lo := e.Key().Words()
		keys = append(keys, lo)
		if e.Len() != int(lo%7+1) {
			t.Errorf("key %d has %d values", lo, e.Len())
		}
		return true
	})
	if len(keys) != 100 || !slices.IsSorted(keys) || keys[49] != 50 {
		t.Fatalf("view keys %v", keys)
	}
	if s.Keys() != 100 {
		t.Fatalf("shard has %d keys", s.Keys())
	}
}

func TestCursorMatchesAscend(t *testing.T) {
	s := newShard(t, 0)
	s.Lock()
	for i := uint64(0); i < 1000; i += 3 {
		s.Add(w(i), w(1))
	}
	v := s.View()
	s.Unlock()
	tests := []struct{ from, to *cid.CID }{
		{nil, nil},
		{ptr(w(100)), nil},
		{nil, ptr(w(500))},
		{ptr(w(101)), ptr(w(700))},
		{ptr(w(5000)), nil},
		{ptr(w(10)), ptr(w(10))},
	}
	for _, tt := range tests {
		var want, got []cid.CID
		v.Ascend(tt.from, tt.to, func(e Entry) bool { want = append(want, e.Key()); return true })
		c := v.Cursor(tt.from, tt.to)
		for c.Next() {
			got = append(got, c.Entry().Key())
		}
		if !slices.Equal(got, want) {
			t.Errorf("cursor(%v,%v): %d keys, ascend %d", tt.from, tt.to, len(got), len(want))
		}
	}
}

func ptr(c cid.CID) *cid.CID { return &c }

func TestSuccessor(t *testing.T) {
	max := cid.FromWords(^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0))
	if _, ok := successor(max); ok {
		t.Fatal("successor of max CID")
	}
	if n, ok := successor(cid.FromWords(0, 0, 1, ^uint64(0))); !ok || n != cid.FromWords(0, 0, 2, 0) {
		t.Fatalf("carry: %v", n)
	}
}

func TestAuditRepairsInjectedMismatch(t *testing.T) {
	s := newShard(t, 4)
	s.Lock()
	for i := uint64(1); i <= 3000; i++ {
		s.Add(w(i), w(1))
	}
	s.Unlock()
	never := func() bool { return false }
	if res := s.Audit(never); res.Mismatches != 0 || res.Rebuilt || res.Checked != 3000 {
		t.Fatalf("clean audit %+v", res)
	}
	// Inject: drop one entry from the index and point another at a stale
	// record.
	s.Lock()
	s.index.Delete(itemOf(s.lookup(w(10))))
	s.index.ReplaceOrInsert(itemOf(newSingle(w(20), w(99))))
	s.Unlock()
	res := s.Audit(never)
	if res.Mismatches < 2 || !res.Rebuilt {
		t.Fatalf("audit after injection %+v", res)
	}
	if res := s.Audit(never); res.Mismatches != 0 {
		t.Fatalf("audit after rebuild %+v", res)
	}
	s.Lock()
	v := s.View()
	s.Unlock()
	n := 0
	v.Ascend(nil, nil, func(e Entry) bool {
		n++
		if e.Key() == w(20) && e.Contains(w(99)) {
			t.Error("stale record survived the rebuild")
		}
		return true
	})
	if n != 3000 || s.Keys() != 3000 || s.Pairs() != 3000 {
		t.Fatalf("after rebuild: %d indexed, %d keys, %d pairs", n, s.Keys(), s.Pairs())
	}
}

func TestCompactConvertsLargeSets(t *testing.T) {
	s := newShard(t, 4)
	s.Lock()
	for v := uint64(1); v <= 10; v++ {
		s.Add(w(1), w(v)) // 10 values > 4: a B-tree set
	}
	s.SetInlineMax(16)
	s.Unlock()
	if !s.lookup(w(1)).isTree() || s.trees.Load() != 1 {
		t.Fatal("set is not a tree before compaction")
	}
	if n := s.Compact(func() bool { return false }); n != 1 {
		t.Fatalf("Compact rewrote %d records", n)
	}
	r := s.lookup(w(1))
	if r.isTree() || r.count() != 10 || s.trees.Load() != 0 {
		t.Fatalf("after compaction: tree=%v count=%d", r.isTree(), r.count())
	}
	if n := s.Compact(func() bool { return false }); n != 0 {
		t.Fatalf("second Compact rewrote %d", n)
	}
}

func TestBulkLoad(t *testing.T) {
	s := newShard(t, 3)
	s.hashMask = 0xff // some collisions too
	l := s.NewLoader()
	want := map[cid.CID][]cid.CID{}
	var singles []Single // added in batches
	for i := uint64(1); i <= 2000; i++ {
		n := i%7 + 1
		var vals []cid.CID
		for v := uint64(1); v <= n; v++ {
			vals = append(vals, w(v*10))
		}
		// Split some value sets over two Adds, as a snapshot may, and
		// some over a batch of singles and an Add.
		switch {
		case n > 2 && i%2 == 0:
			l.Add(w(i), vals[2:])
			l.Add(w(i), vals[:2])
		case n > 2 && i%3 == 0:
			l.Add(w(i), vals[1:])
			singles = append(singles, Single{w(i), vals[0]})
		case n == 1 && i%2 == 0:
			singles = append(singles, Single{w(i), vals[0]})
		default:
			l.Add(w(i), vals)
		}
		if len(singles) == 7 {
			l.AddSingles(singles)
			singles = singles[:0]
		}
		want[w(i)] = vals
	}
	l.AddSingles(singles)
	if err := s.Load(l, 42); err != nil {
		t.Fatal(err)
	}
	for k, vals := range want {
		if got := s.AppendValues(nil, k); !slices.Equal(got, vals) {
			t.Fatalf("%v: %v, want %v", k, got, vals)
		}
	}
	s.Lock()
	lsn := s.LSN()
	s.Unlock()
	if s.Keys() != 2000 || lsn != 42 {
		t.Fatalf("keys %d lsn %d", s.Keys(), lsn)
	}
	if res := s.Audit(func() bool { return false }); res.Mismatches != 0 {
		t.Fatalf("audit after load: %+v", res)
	}
	if err := s.Load(s.NewLoader(), 1); err == nil {
		t.Fatal("Load into a non-empty shard succeeded")
	}
}

// Operations folded into a bulk load give exactly the state that loading
// the entries and then applying the operations one by one gives.
func TestBulkLoadWithOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() cid.CID { return cid.FromWords(rng.Uint64N(3), 0, 0, rng.Uint64N(300)+1) }
	val := func() cid.CID { return w(rng.Uint64N(40) + 1) }
	for round := range 20 {
		got, want := newShard(t, 4), newShard(t, 4)
		got.hashMask, want.hashMask = 0x3f, 0x3f // collisions too
		lg, lw := got.NewLoader(), want.NewLoader()
		seen := map[cid.CID]bool{}
		for range 200 {
			k := key()
			if seen[k] {
				continue
			}
			seen[k] = true
			vals := []cid.CID{}
			for v := uint64(1); v <= rng.Uint64N(12)+1; v++ {
				vals = append(vals, w(v*3))
			}
			lg.Add(k, vals)
			lw.Add(k, vals)
		}
		must(t, want.Load(lw, 7))
		want.Lock()
		for range 2000 {
			k, v := key(), val()
			switch kind := OpKind(rng.IntN(10)%3 + 1); kind {
			case OpAdd:
				want.Add(k, v)
				lg.AddOp(kind, k, v)
			case OpRemove:
				want.Remove(k, v)
				lg.AddOp(kind, k, v)
			default:
				if rng.IntN(4) == 0 { // rarer, so keys live long enough
					want.RemoveKey(k)
					lg.AddOp(kind, k, cid.CID{})
				}
			}
		}
		want.Unlock()
		must(t, got.Load(lg, 9))
		if got.Keys() != want.Keys() || got.Pairs() != want.Pairs() || got.trees.Load() != want.trees.Load() {
			t.Fatalf("round %d: keys %d/%d pairs %d/%d trees %d/%d", round, got.Keys(), want.Keys(),
				got.Pairs(), want.Pairs(), got.trees.Load(), want.trees.Load())
		}
		for g := uint64(0); g < 3; g++ {
			for i := uint64(1); i <= 300; i++ {
				k := cid.FromWords(g, 0, 0, i)
				if a, b := got.AppendValues(nil, k), want.AppendValues(nil, k); !slices.Equal(a, b) {
					t.Fatalf("round %d key %v: %v, want %v", round, k, a, b)
				}
			}
		}
		if res := got.Audit(func() bool { return false }); res.Mismatches != 0 {
			t.Fatalf("round %d: audit %+v", round, res)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLoad bulk-loads one shard's share of a 10M-pair snapshot (64
// shards) plus its share of 1M WAL operations, as recovery does.
func BenchmarkLoad(b *testing.B) {
	const entries, ops = 10_000_000 / 64, 1_000_000 / 64
	rng := rand.New(rand.NewPCG(9, 10))
	rnd := func() cid.CID { return cid.FromWords(rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()) }
	keys, vals, opKeys := make([]cid.CID, entries), make([]cid.CID, entries), make([]cid.CID, ops)
	for i := range keys {
		keys[i], vals[i] = rnd(), rnd()
	}
	for i := range opKeys {
		opKeys[i] = rnd()
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := newShard(b, 32)
		l := s.NewLoader()
		l.Grow(entries)
		for i := range keys {
			l.Add(keys[i], vals[i:i+1])
		}
		for _, k := range opKeys {
			l.AddOp(OpAdd, k, k)
		}
		b.StartTimer()
		must(b, s.Load(l, 1))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(entries+ops)), "ns/key")
}

// A set swapped in place (Add and Remove on a key of several values) must
// never show through a View taken before: every View keeps the values its
// key had when it was taken, also for keys whose sets keep changing, for
// inline and tree sets, while Lookup and Contains see every change.
func TestViewKeepsValuesAcrossInPlaceWrites(t *testing.T) {
	for _, inline := range []int{4, 32} {
		s := newShard(t, inline)
		s.Lock()
		k := w(1)
		var model []cid.CID
		type seen struct {
			v    *View
			want []cid.CID
		}
		var views []seen
		rng := rand.New(rand.NewPCG(5, uint64(inline)))
		for step := 0; step < 2000; step++ {
			v := w(1 + rng.Uint64N(40))
			i, found := slices.BinarySearchFunc(model, v, cid.Compare)
			if rng.IntN(3) > 0 {
				s.Add(k, v)
				if !found {
					model = slices.Insert(model, i, v)
				}
			} else {
				s.Remove(k, v)
				if found {
					model = slices.Delete(model, i, i+1)
				}
			}
			if got := s.AppendValues(nil, k); !slices.Equal(got, model) {
				t.Fatalf("inline %d step %d: live %v, want %v", inline, step, got, model)
			}
			if s.Pairs() != len(model) {
				t.Fatalf("inline %d step %d: Pairs %d, want %d", inline, step, s.Pairs(), len(model))
			}
			if step%7 == 0 {
				views = append(views, seen{s.View(), slices.Clone(model)})
			}
		}
		s.Unlock()
		for j, sv := range views {
			var got []cid.CID
			sv.v.Ascend(nil, nil, func(e Entry) bool {
				got = e.AppendValues(got)
				return true
			})
			if !slices.Equal(got, sv.want) {
				t.Fatalf("inline %d view %d: %v, want %v", inline, j, got, sv.want)
			}
		}
	}
}

// Records a bulk load builds are never published through Add, so they
// carry the epoch they were made with; a View taken after the load must
// still keep their values while later writes change them, inline and
// tree sets alike.
func TestViewKeepsLoadedValues(t *testing.T) {
	for _, n := range []int{3, 40} { // inline and tree with InlineMax 32
		s := newShard(t, 32)
		l := s.NewLoader()
		var vals []cid.CID
		for i := uint64(1); i <= uint64(n); i++ {
			vals = append(vals, w(2*i))
		}
		k := w(1)
		l.Add(k, vals)
		if err := s.Load(l, 1); err != nil {
			t.Fatal(err)
		}
		s.Lock()
		s.Add(k, w(1001)) // before any View: may change the loaded record in place
		before := s.AppendValues(nil, k)
		v := s.View()
		s.Add(k, w(1003))
		s.Remove(k, w(2))
		s.Add(k, w(1005))
		s.Unlock()
		var got []cid.CID
		v.Ascend(nil, nil, func(e Entry) bool {
			got = e.AppendValues(got)
			return true
		})
		if !slices.Equal(got, before) {
			t.Fatalf("%d values: view %v, want %v", n, got, before)
		}
		want := append(slices.Clone(before[1:]), w(1003), w(1005))
		if live := s.AppendValues(nil, k); !slices.Equal(live, want) || s.Pairs() != len(want) {
			t.Fatalf("%d values: live %v (Pairs %d), want %v", n, live, s.Pairs(), want)
		}
	}
}
