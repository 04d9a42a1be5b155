package triples

import (
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"slices"

	"github.com/cidstore/cidstore/cid"
)

// DefaultInlineMax is the default largest value set kept as a sorted
// slice; larger sets become a copy-on-write B-tree.
const DefaultInlineMax = 32

// MaxInlineMax bounds Options.InlineMax.
const MaxInlineMax = 4096

// ErrInvalidOptions is returned (wrapped) by New for invalid Options.
var ErrInvalidOptions = errors.New("triples: invalid options")

// Options configure a Set.
type Options struct {
	// Shards is the number of shards of each index, a power of two >= 1.
	Shards int
	// Seed seeds the hash that spreads keys over shards and map buckets.
	Seed uint64
	// InlineMax is the largest value set kept as a sorted slice. 0 means
	// DefaultInlineMax; valid range 1..MaxInlineMax.
	InlineMax int
}

// Set is a set of triples held in three indexes, SPO, POS and OSP, each
// split into shards by its key. Reads are lock-free; writes go through a
// Batch.
type Set struct {
	idx   [3][]*shard
	shift uint // 64 - log2(shards)
	seed  uint64
}

// New returns an empty Set.
func New(o Options) (*Set, error) {
	if o.InlineMax == 0 {
		o.InlineMax = DefaultInlineMax
	}
	switch {
	case o.Shards < 1 || o.Shards&(o.Shards-1) != 0:
		return nil, fmt.Errorf("%w: Shards %d is not a power of two", ErrInvalidOptions, o.Shards)
	case o.InlineMax < 1 || o.InlineMax > MaxInlineMax:
		return nil, fmt.Errorf("%w: InlineMax %d outside 1..%d", ErrInvalidOptions, o.InlineMax, MaxInlineMax)
	}
	s := &Set{shift: uint(64 - bits.TrailingZeros(uint(o.Shards))), seed: o.Seed}
	for _, ord := range Orders {
		s.idx[ord] = make([]*shard, o.Shards)
		for i := range s.idx[ord] {
			s.idx[ord][i] = newShard(ord, o.InlineMax)
		}
	}
	return s, nil
}

// Shards returns the number of shards of each index.
func (s *Set) Shards() int { return len(s.idx[SPO]) }

func (s *Set) hash(k cid.CID) uint64 { return k.Hash(s.seed) }

// shardOf returns the shard of order o that holds the key whose hash is h:
// its top bits pick the shard.
func (s *Set) shardOf(o Order, h uint64) *shard { return s.idx[o][h>>s.shift] }

// record returns the record of key k in index o, or nil. Lock-free.
func (s *Set) record(o Order, k cid.CID) *Triple {
	h := s.hash(k)
	return s.shardOf(o, h).lookup(k, h)
}

// Has reports whether t is in the set. Lock-free: one map lookup and a
// search in one immutable value set.
func (s *Set) Has(t Triple) bool {
	r := s.record(SPO, t.S)
	return r != nil && SPO.contains(r, SPO.val(&t))
}

// Len returns the number of triples (counted in SPO). Under concurrent
// writes it is a moment's approximation.
func (s *Set) Len() int {
	n := int64(0)
	for _, sh := range s.idx[SPO] {
		n += sh.triples.Load()
	}
	return int(n)
}

// IndexStats describes one index.
type IndexStats struct {
	Keys    int // distinct keys (subjects in SPO, predicates in POS, objects in OSP)
	Triples int // triples it holds
	Trees   int // keys whose values are a B-tree
}

// Stats returns the sizes of the three indexes, in the order SPO, POS,
// OSP.
func (s *Set) Stats() [3]IndexStats {
	var st [3]IndexStats
	for _, o := range Orders {
		for _, sh := range s.idx[o] {
			st[o].Keys += int(sh.keys.Load())
			st[o].Triples += int(sh.triples.Load())
			st[o].Trees += int(sh.trees.Load())
		}
	}
	return st
}

// Query returns the triples that match the pattern (s, p, o), in which the
// zero CID is a wildcard. Each pattern is answered from one index:
//
//	pattern  index  order of the results
//	S P O    SPO    (the triple, if present)
//	S P ?    SPO    by O
//	S ? ?    SPO    by P, then O
//	? P O    POS    by S
//	? P ?    POS    by O, then S
//	S ? O    OSP    by P
//	? ? O    OSP    by S, then P
//	? ? ?    SPO    by S, then P, then O (see All)
//
// Every pattern but ??? is one lock-free map lookup and a walk of one
// immutable value set from a binary search or B-tree seek: O(log n +
// answer). Writes published while a pattern is walked are not seen.
func (s *Set) Query(sub, pred, obj cid.CID) iter.Seq[Triple] {
	var o Order
	var key, first cid.CID
	switch {
	case sub.IsZero() && pred.IsZero() && obj.IsZero():
		return s.All()
	case !sub.IsZero() && !pred.IsZero() && !obj.IsZero():
		t := Triple{sub, pred, obj}
		return func(yield func(Triple) bool) {
			if s.Has(t) {
				yield(t)
			}
		}
	case !sub.IsZero() && obj.IsZero():
		o, key, first = SPO, sub, pred
	case !pred.IsZero():
		o, key, first = POS, pred, obj
	default:
		o, key, first = OSP, obj, sub
	}
	return func(yield func(Triple) bool) {
		r := s.record(o, key)
		if r == nil {
			return
		}
		o.ascend(r, first, func(v pair) bool { return yield(o.join(key, v)) })
	}
}

// Matches reports whether t matches the pattern (sub, pred, obj), in
// which the zero CID is a wildcard.
func Matches(t Triple, sub, pred, obj cid.CID) bool {
	return (sub.IsZero() || t.S == sub) && (pred.IsZero() || t.P == pred) && (obj.IsZero() || t.O == obj)
}

// patternOrder returns the index that answers a pattern.
func patternOrder(sub, pred, obj cid.CID) Order {
	switch {
	case !sub.IsZero() && (obj.IsZero() || !pred.IsZero()):
		return SPO
	case !pred.IsZero():
		return POS
	case !obj.IsZero():
		return OSP
	}
	return SPO
}

// SortLike sorts ts into the order in which Query yields the matches of
// the pattern (sub, pred, obj): by the components of the index that
// answers it, in that index's rotation.
func SortLike(ts []Triple, sub, pred, obj cid.CID) {
	o := patternOrder(sub, pred, obj)
	slices.SortFunc(ts, func(a, b Triple) int {
		if c := cid.Compare(o.key(&a), o.key(&b)); c != 0 {
			return c
		}
		return comparePair(o.val(&a), o.val(&b))
	})
}

// CountMatches returns how many triples match the pattern, as Query would
// yield them, without building them; O(log n + answer) as Query, and
// O(1) for patterns with only a key bound (S??, ?P?, ??O).
func (s *Set) CountMatches(sub, pred, obj cid.CID) int {
	bound := 0
	for _, c := range []cid.CID{sub, pred, obj} {
		if !c.IsZero() {
			bound++
		}
	}
	if bound == 1 {
		o, key := SPO, sub
		if !pred.IsZero() {
			o, key = POS, pred
		} else if !obj.IsZero() {
			o, key = OSP, obj
		}
		if r := s.record(o, key); r != nil {
			return o.count(r)
		}
		return 0
	}
	if bound == 0 {
		return s.Len()
	}
	n := 0
	for range s.Query(sub, pred, obj) {
		n++
	}
	return n
}

// SetInlineMax changes the largest value set kept as a sorted slice (see
// Options.InlineMax); it applies to sets as they change. Values outside
// 1..MaxInlineMax are clamped. It takes each shard's lock in turn.
func (s *Set) SetInlineMax(n int) {
	n = min(max(n, 1), MaxInlineMax)
	for _, o := range Orders {
		for _, sh := range s.idx[o] {
			sh.mu.Lock()
			sh.inlineMax = n
			sh.mu.Unlock()
		}
	}
}

// LockAll takes every shard lock of every index, in lock order: SPO shards
// ascending, then POS, then OSP. A Batch takes its locks in the same
// order, so there is no deadlock.
func (s *Set) LockAll() {
	for _, o := range Orders {
		for _, sh := range s.idx[o] {
			sh.mu.Lock()
		}
	}
}

// UnlockAll releases what LockAll took.
func (s *Set) UnlockAll() {
	for _, o := range Orders {
		for _, sh := range s.idx[o] {
			sh.mu.Unlock()
		}
	}
}

// LSN returns the largest LSN published in any shard. The caller holds
// every lock (LockAll).
func (s *Set) LSN() uint64 {
	var lsn uint64
	for _, o := range Orders {
		for _, sh := range s.idx[o] {
			lsn = max(lsn, sh.lsn)
		}
	}
	return lsn
}
