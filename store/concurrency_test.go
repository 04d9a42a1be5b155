package store

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

// Each writer owns two keys and flips them through a known family of value
// sets: it inserts values 1..n in order, then deletes them in order, again
// and again, crossing the inline/B-tree threshold both ways. Every set a
// reader may legally observe is therefore a contiguous run [i..j] of
// 1..n (or empty). Readers assert that is all they ever see: never an
// unsorted, duplicated or torn set.
func TestReadersSeeWholeSets(t *testing.T) {
	const writers, keysPer, n, rounds = 4, 2, 24, 40
	s := openMem(t, Options{Shards: 4, Config: withConfig(func(c *Config) { c.InlineValues = 6 })})
	var stop atomic.Bool
	var wg, rg sync.WaitGroup
	for r := 0; r < 4; r++ {
		rg.Add(1)
		go func(r int) {
			defer rg.Done()
			buf := make([]cid.CID, 0, n)
			for i := 0; !stop.Load(); i++ {
				k := w(uint64(1 + (i+r)%(writers*keysPer)))
				buf = s.AppendValues(buf[:0], k)
				if !contiguousRun(buf, n) {
					t.Errorf("reader saw %v", buf)
					return
				}
				if c := s.Count(k); c > n {
					t.Errorf("reader saw count %d", c)
					return
				}
			}
		}(r)
	}
	for wr := 0; wr < writers; wr++ {
		wg.Add(1)
		go func(wr int) {
			defer wg.Done()
			for round := 0; round < rounds; round++ {
				for j := 0; j < keysPer; j++ {
					k := w(uint64(1 + wr*keysPer + j))
					for v := uint64(1); v <= n; v++ {
						if err := s.Insert(k, w(v)); err != nil {
							t.Error(err)
							return
						}
					}
					for v := uint64(1); v <= n; v++ {
						if err := s.Delete(k, w(v)); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}
		}(wr)
	}
	wg.Wait()
	stop.Store(true)
	rg.Wait()
	if s.Len() != 0 {
		t.Fatalf("%d keys left", s.Len())
	}
}

// contiguousRun reports whether vs is empty or w(i), w(i+1), ..., w(j)
// with 1 <= i <= j <= n.
func contiguousRun(vs []cid.CID, n uint64) bool {
	for idx, v := range vs {
		hi, mh, ml, lo := v.Words()
		if hi != 0 || mh != 0 || ml != 0 || lo < 1 || lo > n {
			return false
		}
		if idx > 0 {
			_, _, _, prev := vs[idx-1].Words()
			if lo != prev+1 {
				return false
			}
		}
	}
	return true
}

// Iteration under concurrent writers stays sorted and sees each key once.
func TestIterateWhileWriting(t *testing.T) {
	s := openMem(t, Options{Shards: 8})
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := uint64(0); !stop.Load(); i++ {
				k := w(1 + (i*4+uint64(g))%500)
				if i%3 == 0 {
					s.DeleteKey(k)
				} else {
					s.InsertBatch([]Pair{{k, w(i%7 + 1)}, {w(1 + i%500), w(9)}})
				}
			}
		}(g)
	}
	for it := 0; it < 30; it++ {
		var prev cid.CID
		for k, vs := range s.All() {
			if !prev.IsZero() && !cid.Less(prev, k) {
				t.Fatalf("keys out of order: %v then %v", prev, k)
			}
			if len(vs) == 0 {
				t.Fatalf("key %v with no values", k)
			}
			prev = k
		}
	}
	stop.Store(true)
	wg.Wait()
}
