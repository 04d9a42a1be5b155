package shard

import "github.com/cidstore/cidstore/cid"

// slabRecords is the number of records in a full-sized slab: 64 KiB,
// above the runtime's small-object limit, so each slab is a single large
// object.
const slabRecords = 1024

// firstSlab is the number of records in a slab's first block, so that an
// empty or small shard does not hold a full slab.
const firstSlab = 16

// slab hands out single-value records, nearly all of a typical store,
// carved from blocks of records instead of being allocated one by one.
// Inserting a new key then costs no allocation of its own for the record,
// and the garbage collector marks a few large objects rather than millions
// of small ones (BENCHMARKS.md, recovery and inserts, has what that
// saves). The price is that a block's memory is freed only once every
// record in it has been replaced or deleted. Blocks double from firstSlab
// records up to slabRecords. A slab is not safe for concurrent use: its
// owner's lock guards it.
type slab struct {
	free []record // unused tail of the current block
	next int      // records in the next block
}

// single returns a new record holding key k with the one value v.
func (b *slab) single(k, v cid.CID) *record {
	if len(b.free) == 0 {
		b.next = min(max(2*b.next, firstSlab), slabRecords)
		b.free = make([]record, b.next)
	}
	r := &b.free[0]
	*r = record{key: k, one: v}
	b.free = b.free[1:]
	return r
}
