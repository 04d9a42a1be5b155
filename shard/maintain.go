package shard

import (
	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
)

// maintainChunk is how many index entries a maintenance step examines per
// lock hold, so writers never wait long behind maintenance.
const maintainChunk = 1024

// SetInlineMax changes the largest value set kept inline; it applies to
// sets as they change and when Compact runs. The caller holds the lock.
func (s *Shard) SetInlineMax(n int) {
	if n >= 1 && n <= MaxInlineMax {
		s.inlineMax = n
	}
}

// Compact converts every large value set that fits the inline threshold
// back to a sorted slice. It takes the lock itself, a chunk of keys at a
// time, and returns how many records it rewrote. stop is polled between
// chunks.
func (s *Shard) Compact(stop func() bool) int {
	n := 0
	s.walkChunks(stop, func(r *record) {
		if next := compacted(r, s.inlineMax); next != r {
			prev, primary := s.slot(r.key)
			s.publish(r.key, primary, prev, next)
			n++
		}
	})
	return n
}

// walkChunks calls fn for every record of the index, in key order, holding
// the lock for at most maintainChunk records at a time. fn runs under the
// lock and may publish.
func (s *Shard) walkChunks(stop func() bool, fn func(*record)) {
	var next cid.CID
	more := true
	batch := make([]*record, 0, maintainChunk)
	for more && !stop() {
		s.mu.Lock()
		batch = batch[:0]
		s.index.AscendGreaterOrEqual(pivot(next), func(x item) bool {
			batch = append(batch, x.r)
			return len(batch) < maintainChunk
		})
		for _, r := range batch {
			fn(r)
		}
		s.mu.Unlock()
		if len(batch) < maintainChunk {
			break
		}
		next, more = successor(batch[len(batch)-1].key)
	}
}

// AuditResult says what Audit found.
type AuditResult struct {
	Checked    int  // index entries checked
	Mismatches int  // entries disagreeing with the map, plus count differences
	Rebuilt    bool // whether the index was rebuilt from the map
}

// Audit checks that the key index and the map agree: every index entry is
// the record the map holds for its key, and both hold the same number of
// keys. On any mismatch it rebuilds the index from the map (under the
// lock, O(keys)). It takes the lock itself, a chunk at a time for the
// check.
func (s *Shard) Audit(stop func() bool) AuditResult {
	var res AuditResult
	s.walkChunks(stop, func(r *record) {
		res.Checked++
		if s.lookup(r.key) != r {
			res.Mismatches++
		}
	})
	if stop() {
		return res
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mapKeys := s.m.Size() + s.overflow.Size()
	if s.index.Len() != mapKeys || int(s.keys.Load()) != mapKeys {
		res.Mismatches++
	}
	if res.Mismatches > 0 {
		s.rebuildIndex()
		res.Rebuilt = true
	}
	return res
}

// rebuildIndex replaces the key index with one built from the map and
// recounts keys and pairs. The caller holds the lock.
func (s *Shard) rebuildIndex() {
	t := btree.NewG(indexDegree, lessItem)
	var keys, pairs int64
	add := func(r *record) bool {
		t.ReplaceOrInsert(itemOf(r))
		keys++
		pairs += int64(r.count())
		return true
	}
	s.m.Range(func(_ uint64, r *record) bool { return add(r) })
	s.overflow.Range(func(_ cid.CID, r *record) bool { return add(r) })
	s.index = t
	s.keys.Store(keys)
	s.pairs.Store(pairs)
}
