package store

import (
	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/shard"
)

// lookup returns k's entry, or false when k is absent or the store is
// closed. The key is hashed once: the top bits of the hash pick the shard
// and the whole hash keys the shard's map. Lock-free.
func (s *Store) lookup(k cid.CID) (shard.Entry, bool) {
	if s.closed.Load() {
		return shard.Entry{}, false
	}
	h := k.Hash(s.seed)
	return s.shards[h>>s.shift].Lookup(k, h)
}

// Get returns the values of k in ascending order, or nil when k is absent.
// The returned slice belongs to the caller. Get never takes a lock.
func (s *Store) Get(k cid.CID) []cid.CID {
	e, ok := s.lookup(k)
	if !ok {
		return nil
	}
	return e.AppendValues(make([]cid.CID, 0, e.Len()))
}

// AppendValues appends the values of k, in ascending order, to dst and
// returns the extended slice. It does not allocate when dst has room,
// which makes it the allocation-free form of Get.
func (s *Store) AppendValues(dst []cid.CID, k cid.CID) []cid.CID {
	if e, ok := s.lookup(k); ok {
		return e.AppendValues(dst)
	}
	return dst
}

// Contains reports whether v is one of the values of k. It never
// allocates and never takes a lock.
func (s *Store) Contains(k, v cid.CID) bool {
	e, ok := s.lookup(k)
	return ok && e.Contains(v)
}

// Count returns the number of values of k (0 when absent). It never
// allocates and never takes a lock.
func (s *Store) Count(k cid.CID) int {
	if e, ok := s.lookup(k); ok {
		return e.Len()
	}
	return 0
}

// Len returns the number of keys (0 after Close). Under concurrent writes
// it is a moment's approximation: shards are summed one after another.
func (s *Store) Len() int { return s.sum((*shard.Shard).Keys) }

// Pairs returns the number of (key, value) pairs, with the same caveat as
// Len.
func (s *Store) Pairs() int { return s.sum((*shard.Shard).Pairs) }

// sum adds up count over the shards (0 after Close).
func (s *Store) sum(count func(*shard.Shard) int) int {
	if s.closed.Load() {
		return 0
	}
	n := 0
	for _, sh := range s.shards {
		n += count(sh)
	}
	return n
}
