package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(closingMain{m}) }

// closingMain closes what the benchmarks share once they have all run,
// before goleak looks for goroutines left behind.
type closingMain struct{ m *testing.M }

func (c closingMain) Run() int {
	defer closeBenchFixtures()
	return c.m.Run()
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name   string
		o      Options
		shards int
		ok     bool
	}{
		{"default", Options{}, DefaultShards(), true},
		{"one", Options{Shards: 1}, 1, true},
		{"round up", Options{Shards: 3}, 4, true},
		{"power of two", Options{Shards: 64}, 64, true},
		{"max", Options{Shards: MaxShards}, MaxShards, true},
		{"negative", Options{Shards: -1}, 0, false},
		{"too many", Options{Shards: MaxShards + 1}, 0, false},
		{"inline negative", Options{Config: withConfig(func(c *Config) { c.InlineValues = -1 })}, 0, false},
		{"inline too big", Options{Config: withConfig(func(c *Config) { c.InlineValues = 1 << 20 })}, 0, false},
		{"zero config", Options{Config: &Config{}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open("", tt.o)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("Open = %v, want ErrInvalidOptions", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Shards() != tt.shards {
				t.Fatalf("Shards() = %d, want %d", s.Shards(), tt.shards)
			}
		})
	}
}

func TestBasicOps(t *testing.T) {
	s := openMem(t, Options{Shards: 4})
	k := w(1)
	steps := []struct {
		name string
		op   func() error
		want []cid.CID
	}{
		{"insert", func() error { return s.Insert(k, w(30)) }, []cid.CID{w(30)}},
		{"insert dup", func() error { return s.Insert(k, w(30)) }, []cid.CID{w(30)}},
		{"insert lower", func() error { return s.Insert(k, w(10)) }, []cid.CID{w(10), w(30)}},
		{"insert middle", func() error { return s.Insert(k, w(20)) }, []cid.CID{w(10), w(20), w(30)}},
		{"delete absent", func() error { return s.Delete(k, w(99)) }, []cid.CID{w(10), w(20), w(30)}},
		{"delete", func() error { return s.Delete(k, w(20)) }, []cid.CID{w(10), w(30)}},
		{"delete key", func() error { return s.DeleteKey(k) }, nil},
		{"delete key absent", func() error { return s.DeleteKey(k) }, nil},
		{"batch", func() error {
			return s.InsertBatch([]Pair{{k, w(5)}, {k, w(4)}, {k, w(5)}, {w(2), w(1)}})
		}, []cid.CID{w(4), w(5)}},
		{"empty batch", func() error { return s.InsertBatch(nil) }, []cid.CID{w(4), w(5)}},
		{"delete to empty", func() error { s.Delete(k, w(4)); return s.Delete(k, w(5)) }, nil},
	}
	for _, st := range steps {
		if err := st.op(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.Get(k); !slices.Equal(got, st.want) {
			t.Fatalf("%s: Get = %v, want %v", st.name, got, st.want)
		}
		if s.Count(k) != len(st.want) {
			t.Fatalf("%s: Count = %d", st.name, s.Count(k))
		}
		for _, v := range st.want {
			if !s.Contains(k, v) {
				t.Fatalf("%s: Contains(%v) false", st.name, v)
			}
		}
	}
	if s.Len() != 1 || s.Pairs() != 1 {
		t.Fatalf("Len %d Pairs %d, want 1 1", s.Len(), s.Pairs())
	}
	st := s.Stats()
	if st.Keys != 1 || st.Ops.Inserts != 6 || st.Ops.Deletes != 3 || st.Ops.DeleteKeys != 1 || st.Ops.Batches != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestZeroCIDRejected(t *testing.T) {
	s := openMem(t, Options{})
	tests := []struct {
		name string
		err  error
	}{
		{"zero key", s.Insert(cid.Zero, w(1))},
		{"zero value", s.Insert(w(1), cid.Zero)},
		{"batch", s.InsertBatch([]Pair{{w(1), w(2)}, {w(3), cid.Zero}})},
		{"delete zero key", s.Delete(cid.Zero, w(1))},
		{"delete zero value", s.Delete(w(1), cid.Zero)},
		{"delete zero key entirely", s.DeleteKey(cid.Zero)},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, ErrInvalidCID) {
			t.Errorf("%s: %v, want ErrInvalidCID", tt.name, tt.err)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("a rejected batch left %d keys", s.Len())
	}
}

func TestClose(t *testing.T) {
	s := openMem(t, Options{})
	if err := s.Insert(w(1), w(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	for name, err := range map[string]error{
		"Close":       s.Close(),
		"Insert":      s.Insert(w(1), w(3)),
		"InsertBatch": s.InsertBatch([]Pair{{w(1), w(3)}}),
		"empty batch": s.InsertBatch(nil),
		"Delete":      s.Delete(w(1), w(2)),
		"DeleteKey":   s.DeleteKey(w(1)),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if s.Get(w(1)) != nil || s.Contains(w(1), w(2)) || s.Count(w(1)) != 0 || s.Len() != 0 || s.Pairs() != 0 {
		t.Error("reads after Close returned data")
	}
	for range s.All() {
		t.Fatal("All after Close yielded")
	}
}

func TestRangeBounds(t *testing.T) {
	s := openMem(t, Options{Shards: 8})
	for i := uint64(1); i <= 200; i++ {
		if err := s.Insert(w(i), w(i+1000)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		from, to cid.CID
		first    uint64
		n        int
	}{
		{cid.Zero, cid.Zero, 1, 200},
		{w(50), cid.Zero, 50, 151},
		{cid.Zero, w(50), 1, 49},
		{w(10), w(20), 10, 10},
		{w(20), w(10), 0, 0},
		{w(500), cid.Zero, 0, 0},
	}
	for _, tt := range tests {
		var keys []uint64
		for k, vs := range s.Range(tt.from, tt.to) {
			_, _, _, lo := k.Words()
			keys = append(keys, lo)
			if len(vs) != 1 || vs[0] != w(lo+1000) {
				t.Fatalf("key %d values %v", lo, vs)
			}
		}
		if len(keys) != tt.n || (tt.n > 0 && keys[0] != tt.first) || !slices.IsSorted(keys) {
			t.Errorf("Range(%v,%v): %d keys from %v", tt.from.EString(), tt.to.EString(), len(keys), keys[:min(3, len(keys))])
		}
	}
	// Early break stops the iteration.
	n := 0
	for range s.All() {
		n++
		if n == 5 {
			break
		}
	}
	if n != 5 {
		t.Fatal("break")
	}
}

func TestIterationIsPointInTime(t *testing.T) {
	s := openMem(t, Options{Shards: 4})
	for i := uint64(1); i <= 100; i++ {
		s.Insert(w(i), w(1))
	}
	n := 0
	for k := range s.All() {
		if n == 0 {
			// Writes during iteration are not seen by it.
			s.DeleteKey(w(100))
			s.Insert(w(1000), w(1))
			s.Insert(k, w(2))
		}
		n++
	}
	if n != 100 {
		t.Fatalf("iterated %d keys, want the 100 present at the start", n)
	}
}
