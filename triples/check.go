package triples

import (
	"fmt"

	"github.com/cidstore/cidstore/cid"
)

// Check verifies the structure of every shard of every index (each index
// entry is the record its map holds; keys and triples are counted right)
// and that the three indexes hold the same triples. It takes every lock
// for the whole walk: for tests and repairs, not for a live store (the
// audit works from views instead).
func (s *Set) Check() error {
	s.LockAll()
	defer s.UnlockAll()
	var sums [3]fingerprint
	for _, o := range Orders {
		for i, sh := range s.idx[o] {
			if err := sh.check(s.hash); err != nil {
				return fmt.Errorf("triples: %v shard %d: %w", o, i, err)
			}
			sums[o].addView(s, &View{order: o, index: sh.index})
		}
	}
	if sums[POS] != sums[SPO] || sums[OSP] != sums[SPO] {
		return fmt.Errorf("triples: indexes disagree: SPO %v, POS %v, OSP %v", sums[SPO], sums[POS], sums[OSP])
	}
	return nil
}

// check compares a shard's index with its map and its counters. The
// caller holds the lock.
func (s *shard) check(hash func(cid.CID) uint64) error {
	var keys, triples, trees int64
	var err error
	s.index.Ascend(func(x item) bool {
		k := s.order.key(x.r)
		if x.hi != hiOf(k) {
			err = fmt.Errorf("index entry of key %v has a wrong prefix", k)
		}
		if s.lookup(k, hash(k)) != x.r {
			err = fmt.Errorf("index and map disagree on key %v", k)
		}
		keys++
		triples += int64(s.order.count(x.r))
		if s.order.isTree(x.r) {
			trees++
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if n := int64(s.m.Size() + s.overflow.Size()); n != keys {
		return fmt.Errorf("map holds %d keys, index %d", n, keys)
	}
	if keys != s.keys.Load() || triples != s.triples.Load() || trees != s.trees.Load() {
		return fmt.Errorf("counted %d keys, %d triples, %d trees; counters say %d, %d, %d",
			keys, triples, trees, s.keys.Load(), s.triples.Load(), s.trees.Load())
	}
	return nil
}

// fingerprint sums over a set of triples: equal sets give equal
// fingerprints, and sets that differ almost surely do not.
type fingerprint struct {
	n   int64
	sum uint64
	xor uint64
}

func (f *fingerprint) add(s *Set, t *Triple) {
	h := s.hash(t.S)*0x9e3779b97f4a7c15 ^ s.hash(t.P)*0xc2b2ae3d27d4eb4f ^ s.hash(t.O)*0x165667b19e3779f9
	f.n++
	f.sum += h
	f.xor ^= h*0xff51afd7ed558ccd + 1
}

func (f *fingerprint) addView(s *Set, v *View) {
	for t := range v.Triples() {
		f.add(s, &t)
	}
}
