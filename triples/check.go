package triples

import (
	"fmt"

	"github.com/cidstore/cidstore/cid"
)

// Check verifies the structure of every shard of every index (each map
// record is filed under its key's hash; in SPO, the B-tree holds exactly
// the map's records; keys, triples and trees are counted right) and that
// the three indexes hold the same triples. It takes every lock for the
// whole walk: for tests and repairs, not for a live store (see Audit).
func (s *Set) Check() error {
	s.LockAll()
	defer s.UnlockAll()
	var sums [3]fingerprint
	for _, o := range Orders {
		for i, sh := range s.idx[o] {
			if err := sh.check(s.hash, &sums[o]); err != nil {
				return fmt.Errorf("triples: %v shard %d: %w", o, i, err)
			}
		}
	}
	if sums[POS] != sums[SPO] || sums[OSP] != sums[SPO] {
		return fmt.Errorf("triples: indexes disagree: SPO %v, POS %v, OSP %v", sums[SPO], sums[POS], sums[OSP])
	}
	return nil
}

// check checks one shard and adds its triples to sum. The caller holds
// the lock.
func (s *shard) check(hash func(cid.CID) uint64, sum *fingerprint) error {
	o := s.order
	var keys, triples, trees int64
	var err error
	s.records(func(r *Triple) bool {
		k := o.key(r)
		if s.lookup(k, hash(k)) != r {
			err = fmt.Errorf("map does not find the record of key %v", k)
		}
		keys++
		triples += int64(o.count(r))
		if o.isTree(r) {
			trees++
		}
		o.ascend(r, cid.Zero, func(v pair) bool {
			t := o.join(k, v)
			sum.add(hash, &t)
			return true
		})
		return err == nil
	})
	if err != nil {
		return err
	}
	if s.index != nil {
		n := int64(0)
		s.index.Ascend(func(x item) bool {
			k := o.key(x.r)
			if x.hi != hiOf(k) || s.lookup(k, hash(k)) != x.r {
				err = fmt.Errorf("index entry of key %v is not the map's record", k)
			}
			n++
			return err == nil
		})
		if err == nil && n != keys {
			err = fmt.Errorf("index holds %d keys, the map %d", n, keys)
		}
		if err != nil {
			return err
		}
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

func (f *fingerprint) add(hash func(cid.CID) uint64, t *Triple) {
	h := hash(t.S)*0x9e3779b97f4a7c15 ^ hash(t.P)*0xc2b2ae3d27d4eb4f ^ hash(t.O)*0x165667b19e3779f9
	f.n++
	f.sum += h
	f.xor ^= h*0xff51afd7ed558ccd + 1
}
