package shard

import "github.com/cidstore/cidstore/internal/bulk"

// radixSort is bulk.Sort; see there.
func radixSort[T any](xs, tmp []T, width uint, key func(*T) uint64) []T {
	return bulk.Sort(xs, tmp, width, key)
}

func hiKey(k *loadKey) uint64 { return k.hi }

// bucketMask is bulk.BucketMask; see there.
func bucketMask(n int) uint64 { return bulk.BucketMask(n) }

// bucketWidth is the number of bits a bucket index of mask has.
func bucketWidth(mask uint64) uint { return bulk.BucketWidth(mask) }
