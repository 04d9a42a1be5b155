package shard

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

// radixSort agrees with a stable comparison sort, on random prefixes and
// on prefixes with many repeats and shared bytes.
func TestRadixSortIsStable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 17, 1000, 50_000} {
		for _, gen := range []func() uint64{
			rng.Uint64,
			func() uint64 { return rng.Uint64N(8) << 40 },
			func() uint64 { return 42 },
		} {
			keys := make([]loadKey, n)
			for i := range keys {
				keys[i] = loadKey{hi: gen(), ref: uint32(i)}
			}
			want := slices.Clone(keys)
			slices.SortStableFunc(want, func(a, b loadKey) int { return cmp.Compare(a.hi, b.hi) })
			if got := radixSort(keys, nil, 64, hiKey); !slices.Equal(got, want) {
				t.Fatalf("n=%d: radix sort differs from a stable sort", n)
			}
		}
	}
}

// sortKeys orders prefixes as a stable sort by prefix does, whether they
// differ in their top bits (random keys) or share them (runs sorted by
// comparison, and runs long enough for a radix sort of their own).
func TestSortKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 2, 17, 1000, 50_000} {
		for _, gen := range []func() uint64{
			rng.Uint64,
			func() uint64 { return rng.Uint64N(1 << 30) },                  // all alike in the top bits
			func() uint64 { return rng.Uint64N(64)<<42 | rng.Uint64N(50) }, // short runs, repeats
			func() uint64 { return 42 },
		} {
			keys := make([]loadKey, n)
			cids := make([]cid.CID, n)
			for i := range keys {
				keys[i] = loadKey{hi: gen(), ref: uint32(i)}
				cids[i] = cid.FromWords(keys[i].hi, 0, 0, rng.Uint64N(3))
			}
			full := func(ref uint32) *cid.CID { return &cids[ref] }
			want := slices.Clone(keys)
			slices.SortStableFunc(want, func(a, b loadKey) int { return cid.Compare(*full(a.ref), *full(b.ref)) })
			if got := sortKeys(keys, nil, full); !slices.Equal(got, want) {
				t.Fatalf("n=%d: sortKeys differs from a stable sort", n)
			}
		}
	}
}

// benchSort times sort on copies of the 156k random prefixes of a
// shard of a 10M-key store.
func benchSort(b *testing.B, sort func(work, tmp []loadKey)) {
	rng := rand.New(rand.NewPCG(5, 6))
	keys := make([]loadKey, 156_000)
	for i := range keys {
		keys[i] = loadKey{hi: rng.Uint64(), ref: uint32(i)}
	}
	work, tmp := make([]loadKey, len(keys)), make([]loadKey, len(keys))
	b.ReportAllocs()
	for b.Loop() {
		copy(work, keys)
		sort(work, tmp)
	}
}

func BenchmarkSortKeys(b *testing.B) {
	benchSort(b, func(work, tmp []loadKey) { sortKeys(work, tmp, nil) })
}

func BenchmarkRadixSort(b *testing.B) {
	benchSort(b, func(work, tmp []loadKey) { radixSort(work, tmp, 64, hiKey) })
}

func BenchmarkComparisonSort(b *testing.B) {
	benchSort(b, func(work, _ []loadKey) {
		slices.SortFunc(work, func(a, b loadKey) int { return cmp.Compare(a.hi, b.hi) })
	})
}
