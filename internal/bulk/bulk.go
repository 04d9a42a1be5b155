// Package bulk holds the sorting helpers of bulk loads, shared by the
// pair shards (package shard) and the triple indexes (package triples):
// a stable radix sort of pointer-free records and the bucket order of a
// presized xsync map.
package bulk

import "math/bits"

// radixBits is the digit width of Sort: 2048 counters fit in L1.
const (
	radixBits = 11
	radixMask = 1<<radixBits - 1
)

// Sort sorts xs by key(x), of which only the low width bits count, with a
// stable least-significant-digit radix sort, using tmp (grown as needed)
// as scratch. A pass whose digit is the same in every element is skipped.
// On the hundreds of thousands of random 64-bit keys a shard's bulk load
// sorts it is several times faster than a comparison sort.
func Sort[T any](xs, tmp []T, width uint, key func(*T) uint64) []T {
	if len(xs) < 2 {
		return xs
	}
	if cap(tmp) < len(xs) {
		tmp = make([]T, len(xs))
	}
	src, dst := xs, tmp[:len(xs)]
	for shift := uint(0); shift < width; shift += radixBits {
		var count [1 << radixBits]int
		for i := range src {
			count[key(&src[i])>>shift&radixMask]++
		}
		if count[key(&src[0])>>shift&radixMask] == len(src) {
			continue // every element has this digit: nothing to move
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for i := range src {
			d := key(&src[i]) >> shift & radixMask
			dst[count[d]] = src[i]
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &xs[0] {
		copy(xs, src)
	}
	return xs
}

// BucketMask predicts the bucket index mask of an xsync map presized for
// n entries (5 entries a bucket, load factor 0.75, a power-of-two table;
// a key's bucket is (hash>>7)&mask), as xsync/v3 v3.5.1 lays out its
// table; re-check on an upgrade. Only the speed of a bulk load depends on
// the prediction being right: filling a map in bucket order turns a cache
// miss per key into a sweep.
func BucketMask(n int) uint64 {
	buckets := uint64(1)
	for float64(buckets) < float64(n)/5/0.75 {
		buckets <<= 1
	}
	return buckets - 1
}

// BucketWidth is the number of bits a bucket index of mask has.
func BucketWidth(mask uint64) uint { return uint(bits.Len64(mask)) }
