package store

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

func TestApplyBatchOrder(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s := openDir(t, dir, Options{Shards: 4})
		must(t, s.Insert(w(1), w(9)))
		must(t, s.Insert(w(2), w(9)))
		ops := []PairOp{
			{Kind: OpInsert, Key: w(1), Value: w(1)},
			{Kind: OpDeleteKey, Key: w(1)},
			{Kind: OpInsert, Key: w(1), Value: w(2)}, // survives the DeleteKey before it
			{Kind: OpInsert, Key: w(3), Value: w(1)},
			{Kind: OpDelete, Key: w(3), Value: w(1)}, // undoes the insert before it
			{Kind: OpDelete, Key: w(2), Value: w(9)},
			{Kind: OpInsert, Key: w(2), Value: w(9)}, // and this undoes the delete
			{Kind: OpDelete, Key: w(4), Value: w(4)}, // absent: a no-op
			{Kind: OpDeleteKey, Key: w(5)},           // absent: a no-op
		}
		must(t, s.ApplyBatch(ops))
		want := model{}
		want.add(w(1), w(2))
		want.add(w(2), w(9))
		checkAll(t, s, want, 0, 0)
		must(t, s.Close())
		if dir == "" {
			continue
		}
		r := openDir(t, dir, Options{Shards: 2})
		checkAll(t, r, want, 0, 1)
		must(t, r.Close())
	}
}

func TestApplyBatchValidation(t *testing.T) {
	s := openMem(t, Options{})
	good := PairOp{Kind: OpInsert, Key: w(1), Value: w(2)}
	tests := []struct {
		name string
		op   PairOp
		want error
	}{
		{"unknown kind", PairOp{Kind: 9, Key: w(1), Value: w(2)}, ErrInvalidOp},
		{"zero kind", PairOp{Key: w(1), Value: w(2)}, ErrInvalidOp},
		{"zero key", PairOp{Kind: OpInsert, Value: w(2)}, ErrInvalidCID},
		{"zero value", PairOp{Kind: OpDelete, Key: w(1)}, ErrInvalidCID},
		{"zero key of delete-key", PairOp{Kind: OpDeleteKey}, ErrInvalidCID},
	}
	for _, tt := range tests {
		if err := s.ApplyBatch([]PairOp{good, tt.op}); !errors.Is(err, tt.want) {
			t.Errorf("%s: ApplyBatch = %v, want %v", tt.name, err, tt.want)
		}
		if s.Len() != 0 {
			t.Fatalf("%s: a rejected batch changed the store", tt.name)
		}
	}
	// A DeleteKey ignores its Value.
	must(t, s.ApplyBatch([]PairOp{good, {Kind: OpDeleteKey, Key: w(1), Value: w(7)}}))
	if s.Len() != 0 {
		t.Fatal("DeleteKey with a Value left the key")
	}
	must(t, s.ApplyBatch(nil))
	must(t, s.Close())
	for _, ops := range [][]PairOp{{good}, nil} {
		if err := s.ApplyBatch(ops); !errors.Is(err, ErrClosed) {
			t.Fatalf("ApplyBatch of %d after Close = %v, want ErrClosed", len(ops), err)
		}
	}
}

func TestApplyBatchTooLarge(t *testing.T) {
	s := openMem(t, Options{})
	if err := s.ApplyBatch(make([]PairOp, MaxBatch+1)); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("ApplyBatch of MaxBatch+1 = %v, want ErrBatchTooLarge", err)
	}
}

// TestApplyBatchOneRecord checks that a batch is one WAL record and that a
// batch changing nothing logs nothing.
func TestApplyBatchOneRecord(t *testing.T) {
	s := openDir(t, t.TempDir(), Options{})
	defer s.Close()
	ops := make([]PairOp, 0, 600)
	for i := uint64(1); i <= 300; i++ {
		ops = append(ops, PairOp{Kind: OpInsert, Key: w(i), Value: w(i)}, PairOp{Kind: OpInsert, Key: w(i), Value: w(i + 1)})
	}
	before := s.Stats().WAL.Appends
	must(t, s.ApplyBatch(ops))
	if got := s.Stats().WAL.Appends - before; got != 1 {
		t.Fatalf("a batch took %d WAL records, want 1", got)
	}
	must(t, s.ApplyBatch(ops)) // every pair present: nothing to log
	must(t, s.ApplyBatch([]PairOp{{Kind: OpDelete, Key: w(1000), Value: w(1)}}))
	if got := s.Stats().WAL.Appends - before; got != 1 {
		t.Fatalf("no-op batches were logged: %d records", got)
	}
	st := s.Stats()
	if st.Ops.Inserts != 600 || st.Ops.Batches != 1 {
		t.Fatalf("Ops = %+v, want 600 inserts in 1 logged batch", st.Ops)
	}
}

// TestApplyBatchModel applies seeded random mixed batches, large enough to
// be published on several goroutines and with repeated keys, to a
// persistent store and the model, then reopens and compares again.
func TestApplyBatchModel(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed))
		dir := t.TempDir()
		c := DefaultConfig()
		c.InlineValues = int(seed)
		s := openDir(t, dir, Options{Shards: 1 << seed, Config: &c, SegmentSize: 64 << 10})
		m := model{}
		for step := 0; step < 60; step++ {
			ops := make([]PairOp, rng.IntN(2*parallelBatch+200))
			for i := range ops {
				k, v := w(1+rng.Uint64N(50)), w(1+rng.Uint64N(20))
				kind := []PairOpKind{OpInsert, OpInsert, OpInsert, OpDelete, OpDelete, OpDeleteKey}[rng.IntN(6)]
				ops[i] = PairOp{Kind: kind, Key: k, Value: v}
			}
			want := m.apply(ops)
			if step%2 == 0 {
				must(t, s.ApplyBatch(ops))
			} else {
				got := make([]bool, len(ops))
				n, err := s.ApplyPairs(ops, got)
				must(t, err)
				wantN := 0
				for i := range ops {
					if got[i] != want[i] {
						t.Fatalf("seed %d step %d: ApplyPairs says op %d (%v) changed=%v, want %v", seed, step, i, ops[i], got[i], want[i])
					}
					if want[i] {
						wantN++
					}
				}
				if n != wantN {
					t.Fatalf("seed %d step %d: ApplyPairs changed %d, want %d", seed, step, n, wantN)
				}
			}
			checkAll(t, s, m, seed, step)
		}
		must(t, s.Close())
		r := openDir(t, dir, Options{Shards: 3})
		checkAll(t, r, m, seed, -1)
		must(t, r.Close())
	}
}

// TestApplyBatchConcurrent runs batches from several goroutines while All
// iterates. Every batch adds one new value under two different keys (and
// adds and deletes a third pair), so a view that saw part of a batch would
// count an odd number of new pairs.
func TestApplyBatchConcurrent(t *testing.T) {
	s := openDir(t, t.TempDir(), Options{Shards: 8})
	defer s.Close()
	const writers, rounds, keys = 4, 200, 64
	for k := uint64(1); k <= keys; k++ {
		must(t, s.Insert(w(k), w(1<<40)))
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for r := range rounds {
				v := w(uint64(g)<<32 | uint64(r) + 1)
				a := 1 + rng.Uint64N(keys)
				b := 1 + (a+rng.Uint64N(keys-1))%keys // != a
				err := s.ApplyBatch([]PairOp{
					{Kind: OpInsert, Key: w(a), Value: v},
					{Kind: OpInsert, Key: w(b), Value: w(1 << 41)},
					{Kind: OpInsert, Key: w(b), Value: v},
					{Kind: OpDelete, Key: w(b), Value: w(1 << 41)},
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			if got, want := s.Pairs(), keys+2*writers*rounds; got != want {
				t.Fatalf("Pairs = %d, want %d", got, want)
			}
			return
		default:
		}
		pairs := 0
		for _, vs := range s.All() {
			pairs += len(vs)
		}
		if (pairs-keys)%2 != 0 {
			t.Fatalf("All saw %d pairs: part of a batch", pairs)
		}
	}
}

func TestPairOpKindString(t *testing.T) {
	for k, want := range map[PairOpKind]string{OpInsert: "insert", OpDelete: "delete", OpDeleteKey: "delete-key", 0: "PairOpKind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
}

func TestApplyPairsInMemory(t *testing.T) {
	s := openMem(t, Options{Shards: 4})
	m := model{}
	rng := rand.New(rand.NewPCG(7, 7))
	for step := 0; step < 40; step++ {
		ops := make([]PairOp, 1+rng.IntN(2*parallelBatch))
		for i := range ops {
			kind := []PairOpKind{OpInsert, OpInsert, OpDelete, OpDeleteKey}[rng.IntN(4)]
			ops[i] = PairOp{Kind: kind, Key: w(1 + rng.Uint64N(30)), Value: w(1 + rng.Uint64N(10))}
		}
		want := m.apply(ops)
		got := make([]bool, len(ops))
		n, err := s.ApplyPairs(ops, got)
		must(t, err)
		wantN := 0
		for i := range ops {
			if got[i] != want[i] {
				t.Fatalf("step %d: op %d (%v) changed=%v, want %v", step, i, ops[i], got[i], want[i])
			}
			if want[i] {
				wantN++
			}
		}
		if n != wantN {
			t.Fatalf("step %d: changed %d, want %d", step, n, wantN)
		}
		checkAll(t, s, m, 0, step)
	}
	if _, err := s.ApplyPairs([]PairOp{{Kind: OpInsert, Key: w(1), Value: w(1)}}, make([]bool, 2)); !errors.Is(err, ErrInvalidOp) {
		t.Fatalf("ApplyPairs with a short changed slice: %v, want ErrInvalidOp", err)
	}
}
