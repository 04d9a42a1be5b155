package shard

import (
	"errors"
	"slices"
	"sync"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
	"github.com/puzpuzpuz/xsync/v3"
)

// Loader collects the entries of an empty shard for a bulk load, the fast
// path of recovery from a snapshot. Add may be called from several
// goroutines; Shard.Load then sorts once and builds the map and the index
// in key order, which is several times cheaper than one Add per pair.
type Loader struct {
	s     *Shard
	mu    sync.Mutex
	items []item
}

// NewLoader returns a Loader for s.
func (s *Shard) NewLoader() *Loader { return &Loader{s: s} }

// Add records key k with values vals (ascending, no duplicates; copied).
// The same key may be added several times: Load merges the value sets.
func (l *Loader) Add(k cid.CID, vals []cid.CID) {
	if len(vals) == 0 {
		return
	}
	if len(vals) > 1 {
		vals = slices.Clone(vals) // a single value is copied into the record
	}
	r := fromSorted(k, vals, l.s.inlineMax)
	l.mu.Lock()
	l.items = append(l.items, itemOf(r))
	l.mu.Unlock()
}

// Load publishes everything l collected into s, which must be empty, and
// records lsn as the shard's last LSN. It takes the lock itself.
func (s *Shard) Load(l *Loader, lsn uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys.Load() != 0 {
		return errors.New("shard: Load into a non-empty shard")
	}
	items := l.items
	l.items = nil
	slices.SortFunc(items, func(a, b item) int {
		if a.hi != b.hi {
			if a.hi < b.hi {
				return -1
			}
			return 1
		}
		return cid.Compare(a.r.key, b.r.key)
	})
	// A presized map avoids growing it key by key; keys arrive in order,
	// so the index only ever grows at its right edge.
	s.m = newPrimary(xsync.WithPresize(len(items)))
	s.index = btree.NewG(indexDegree, lessItem)
	var keys, pairs, trees int64
	for i := 0; i < len(items); {
		it := items[i]
		j := i + 1
		for j < len(items) && items[j].hi == it.hi && items[j].r.key == it.r.key {
			j++
		}
		if j > i+1 { // a value set split over several entries
			var vals []cid.CID
			for _, x := range items[i:j] {
				vals = x.r.appendValues(vals)
			}
			slices.SortFunc(vals, cid.Compare)
			it = itemOf(fromSorted(it.r.key, slices.Compact(vals), s.inlineMax))
		}
		r := it.r
		if _, taken := s.m.LoadOrStore(s.hash(r.key), r); taken {
			s.overflow.Store(r.key, r) // another key has this hash
			s.nOverflow.Add(1)
		}
		s.index.ReplaceOrInsert(it)
		keys++
		pairs += int64(r.count())
		if r.isTree() {
			trees++
		}
		i = j
	}
	s.keys.Store(keys)
	s.pairs.Store(pairs)
	s.trees.Store(trees)
	s.SetLSN(lsn)
	return nil
}

// fromSorted builds a record from a non-empty ascending, duplicate-free
// value slice, which it takes ownership of.
func fromSorted(k cid.CID, vals []cid.CID, inlineMax int) *record {
	switch {
	case len(vals) == 1:
		return newSingle(k, vals[0])
	case len(vals) <= inlineMax:
		return newSmall(k, vals)
	}
	t := btree.NewG(valueDegree, lessCID)
	for _, v := range vals {
		t.ReplaceOrInsert(v)
	}
	return newTree(k, t)
}
