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

// position is where an incremental maintenance pass continues: the key
// after the last one examined. The zero value starts at the beginning.
type position struct {
	next cid.CID
	done bool
}

// walkStep calls fn for up to max index records from pos, in key order,
// under the lock, and returns where the next step continues. fn may
// publish.
func (s *Shard) walkStep(pos position, max int, fn func(*record)) position {
	if pos.done {
		return pos
	}
	batch := s.stepLocked(pos, max, fn)
	if len(batch) < max {
		return position{done: true}
	}
	next, more := successor(batch[len(batch)-1].key)
	return position{next: next, done: !more}
}

// stepLocked is walkStep's work under the lock. The lock is released by
// defer, as every shard lock that spans a call is: a step that panics (a
// bug) must not leave the shard locked for every later writer and for
// Close while the maintenance scheduler recovers the panic.
func (s *Shard) stepLocked(pos position, max int, fn func(*record)) []*record {
	batch := make([]*record, 0, min(max, maintainChunk))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index.AscendGreaterOrEqual(pivot(pos.next), func(x item) bool {
		batch = append(batch, x.r)
		return len(batch) < max
	})
	for _, r := range batch {
		fn(r)
	}
	return batch
}

// compactStep examines up to max keys from pos and converts every large
// value set that fits the inline threshold back to a sorted slice. It
// returns the next position and how many records it rewrote. It takes the
// lock itself. Shards without large sets return at once.
func (s *Shard) compactStep(pos position, max int) (position, int) {
	if s.trees.Load() == 0 {
		return position{done: true}, 0
	}
	n := 0
	pos = s.walkStep(pos, max, func(r *record) {
		if next := compacted(r, s.inlineMax); next != r {
			h := s.hash(r.key)
			prev, primary := s.slot(r.key, h)
			s.publish(r.key, h, primary, prev, next)
			n++
		}
	})
	return pos, n
}

// Compact runs compactStep passes over the whole shard, maintainChunk keys
// per lock hold, calling stop between chunks (a caller may pause in it)
// and ending early when it returns true. It returns the records rewritten.
func (s *Shard) Compact(stop func() bool) int {
	total := 0
	for pos := (position{}); !pos.done && !stop(); {
		var n int
		pos, n = s.compactStep(pos, maintainChunk)
		total += n
	}
	return total
}

// auditStep checks up to max index entries from pos: each must be the
// record the map holds for its key. It returns the next position and the
// number of mismatches. It takes the lock itself.
func (s *Shard) auditStep(pos position, max int) (position, int) {
	bad := 0
	pos = s.walkStep(pos, max, func(r *record) {
		if s.lookup(r.key) != r {
			bad++
		}
	})
	return pos, bad
}

// CountsAgree reports whether the map, the index and the key counter hold
// the same number of keys. O(1); takes the lock itself.
func (s *Shard) CountsAgree() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.m.Size() + s.overflow.Size()
	return s.index.Len() == n && int(s.keys.Load()) == n
}

// AuditResult says what Audit found.
type AuditResult struct {
	Checked    int  // index entries checked
	Mismatches int  // entries disagreeing with the map, plus count differences
	Rebuilt    bool // whether the index was rebuilt from the map
}

// Audit checks the whole shard (auditStep passes of maintainChunk entries
// per lock hold, then CountsAgree) and rebuilds the index from the map on
// any mismatch. It calls stop between chunks (a caller may pause in it)
// and gives up, rebuilding nothing, when it returns true.
func (s *Shard) Audit(stop func() bool) AuditResult {
	var res AuditResult
	for pos := (position{}); !pos.done; {
		if stop() {
			return res
		}
		var bad int
		pos, bad = s.auditStep(pos, maintainChunk)
		res.Mismatches += bad
	}
	res.Checked = s.Keys()
	if !s.CountsAgree() {
		res.Mismatches++
	}
	if res.Mismatches > 0 {
		s.RebuildIndex()
		res.Rebuilt = true
	}
	return res
}

// RebuildIndex replaces the key index with one built from the map and
// recounts keys and pairs. O(keys) under the lock; for repairs only.
func (s *Shard) RebuildIndex() {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := btree.NewG(indexDegree, lessItem)
	var keys, pairs, trees int64
	add := func(r *record) bool {
		t.ReplaceOrInsert(itemOf(r))
		keys++
		pairs += int64(r.count())
		if r.isTree() {
			trees++
		}
		return true
	}
	s.m.Range(func(_ uint64, r *record) bool { return add(r) })
	s.overflow.Range(func(_ cid.CID, r *record) bool { return add(r) })
	s.index = t
	s.keys.Store(keys)
	s.pairs.Store(pairs)
	s.trees.Store(trees)
}
