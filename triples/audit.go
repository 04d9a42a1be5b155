package triples

import (
	"github.com/cidstore/cidstore/cid"
)

// AuditResult says what Audit found and repaired.
type AuditResult struct {
	Checked    int // triples checked (those of all three indexes)
	Mismatches int // index entries disagreeing with their map, and triples not in all three indexes
	Repaired   int // entries added or removed, and SPO key indexes rebuilt
}

// auditChunk is how many triples the audit examines between calls to
// stop, and how many SPO index entries per lock hold.
const auditChunk = 1024

// Audit checks the set while writers go on, and repairs what disagrees:
//
//   - each SPO shard's B-tree against its map, a chunk of entries per lock
//     hold (a shard that disagrees has its B-tree rebuilt from the map);
//   - the three indexes against each other: every triple of each index is
//     looked up in the other two without a lock, and a triple missing from
//     one is checked again under the locks of its three shards, where it
//     is settled by majority: present in two indexes, it is added to the
//     third; present in one, it is removed from it. The logged state is
//     what two indexes agree on, so repairs log nothing.
//
// It calls stop between chunks (a caller may pause in it) and returns
// early when stop returns true.
func (s *Set) Audit(stop func() bool) AuditResult {
	var res AuditResult
	for i, sh := range s.idx[SPO] {
		if stop() {
			return res
		}
		if bad := sh.auditIndex(s.hash, stop); bad > 0 {
			res.Mismatches += bad
			res.Repaired++
			s.idx[SPO][i].rebuildIndex()
		}
	}
	stopped := false
	check := func(t Triple) bool {
		if res.Checked++; res.Checked%auditChunk == 0 && stop() {
			stopped = true
			return false
		}
		if !s.inAll(&t) {
			res.Mismatches++
			if s.settle(t) {
				res.Repaired++
			}
		}
		return true
	}
	for _, o := range Orders {
		for _, sh := range s.idx[o] {
			// The map is walked without its lock (xsync's Range is
			// lock-free), and records are immutable.
			sh.records(func(r *Triple) bool {
				k := o.key(r)
				o.ascend(r, cid.Zero, func(v pair) bool { return check(o.join(k, v)) })
				return !stopped
			})
			if stopped {
				return res
			}
		}
	}
	return res
}

// present reports whether index o holds t. Lock-free.
func (s *Set) present(o Order, t *Triple) bool {
	r := s.record(o, o.key(t))
	return r != nil && o.contains(r, o.val(t))
}

func (s *Set) inAll(t *Triple) bool {
	return s.present(SPO, t) && s.present(POS, t) && s.present(OSP, t)
}

// settle checks t under the locks of its three shards and, if the
// indexes disagree on it, makes the odd one agree with the other two. It
// reports whether it changed anything.
func (s *Set) settle(t Triple) bool {
	b := s.Prepare([]Op{{Triple: t}})
	b.Lock()
	defer b.Unlock()
	var in [3]bool
	votes := 0
	for _, o := range Orders {
		if in[o] = s.present(o, &t); in[o] {
			votes++
		}
	}
	if votes == 0 || votes == 3 {
		return false // a writer settled it meanwhile
	}
	want := votes >= 2
	for _, o := range Orders {
		if in[o] != want {
			k := o.key(&t)
			h := s.hash(k)
			rec := t
			s.shardOf(o, h).apply(k, h, []change{{v: o.val(&t), rec: &rec, del: !want}})
		}
	}
	return true
}

// auditIndex checks the B-tree of an SPO shard against its map, a chunk
// of entries per lock hold, and returns the number of mismatches (entries
// that are not the map's record, plus one if the counts differ).
func (sh *shard) auditIndex(hash func(cid.CID) uint64, stop func() bool) int {
	bad := 0
	var next item
	first := true
	for {
		sh.mu.Lock()
		n := 0
		from := next
		visit := func(x item) bool {
			if !first && n == 0 && x.r == from.r {
				return true // the last entry of the previous chunk
			}
			k := sh.order.key(x.r)
			if x.hi != hiOf(k) || sh.lookup(k, hash(k)) != x.r {
				bad++
			}
			next = x
			n++
			return n < auditChunk
		}
		if first {
			sh.index.Ascend(visit)
		} else {
			sh.index.AscendGreaterOrEqual(from, visit)
		}
		done := n < auditChunk
		if done && int64(sh.index.Len()) != int64(sh.size()) {
			bad++
		}
		sh.mu.Unlock()
		first = false
		if done || stop() {
			return bad
		}
	}
}

// rebuildIndex replaces an SPO shard's B-tree with one built from its map
// and recounts it. O(keys) under the lock; for repairs only.
func (sh *shard) rebuildIndex() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	o := sh.order
	t := o.newIndex()
	var keys, triples, trees int64
	sh.records(func(r *Triple) bool {
		t.ReplaceOrInsert(o.itemOf(r))
		keys++
		triples += int64(o.count(r))
		if o.isTree(r) {
			trees++
		}
		return true
	})
	sh.index = t
	sh.keys.Store(keys)
	sh.triples.Store(triples)
	sh.trees.Store(trees)
}
