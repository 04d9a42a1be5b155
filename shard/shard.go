package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
	"github.com/puzpuzpuz/xsync/v3"
)

// indexDegree is the B-tree degree of the shard's key index.
const indexDegree = 64

// DefaultInlineMax is the default largest value set kept as a sorted slice.
const DefaultInlineMax = 32

// MaxInlineMax bounds Options.InlineMax.
const MaxInlineMax = 4096

// ErrInvalidOptions is returned (wrapped) by New for invalid Options.
var ErrInvalidOptions = errors.New("shard: invalid options")

// Options configure a Shard. The zero value is valid.
type Options struct {
	// InlineMax is the largest value set kept as a sorted slice; larger
	// sets become a copy-on-write B-tree. 0 means DefaultInlineMax; valid
	// range 1..MaxInlineMax.
	InlineMax int
	// Seed seeds the map's hash function.
	Seed uint64
	// Presize is a hint of how many keys the shard will hold.
	Presize int
}

// Shard is one shard's state. Reads (Count, Contains, AppendValues, Keys,
// Pairs) are lock-free and safe at any time. Writes (Add, Remove,
// RemoveKey, SetLSN, View) require the caller to hold the shard's lock
// (Lock/Unlock), so that it can log an operation and publish it as one
// step.
type Shard struct {
	mu        sync.Mutex
	m         *xsync.MapOf[uint64, *record]  // keyed by hash(key)
	overflow  *xsync.MapOf[cid.CID, *record] // keys whose hash is taken
	nOverflow atomic.Int64                   // len(overflow), read first
	seed      uint64
	hashMask  uint64 // all ones; tests narrow it to force collisions
	index     *btree.BTreeG[item]
	inlineMax int
	lsn       uint64 // last log sequence number published; guarded by mu
	slab      slab   // where new single-value records come from; guarded by mu
	epoch     uint64 // Views taken so far (see Add); guarded by mu

	keys  atomic.Int64
	pairs atomic.Int64
	trees atomic.Int64 // records whose value set is a B-tree
}

// item is an entry of the key index. The first word of the key is kept
// inline so that the B-tree's binary searches compare integers in the node
// instead of dereferencing a record per comparison; only keys equal in
// their first 64 bits fall back to the full comparison.
type item struct {
	hi uint64
	r  *record
}

func itemOf(r *record) item { return item{hiOf(r.key), r} }

// hiOf is a key's first 8 bytes as a big-endian integer: ordering by it
// agrees with ordering by the key.
func hiOf(k cid.CID) uint64 { return binary.BigEndian.Uint64(k[:8]) }

func lessItem(a, b item) bool {
	if a.hi != b.hi {
		return a.hi < b.hi
	}
	return cid.Less(a.r.key, b.r.key)
}

// New returns an empty shard.
func New(o Options) (*Shard, error) {
	if o.InlineMax == 0 {
		o.InlineMax = DefaultInlineMax
	}
	if o.InlineMax < 1 || o.InlineMax > MaxInlineMax {
		return nil, fmt.Errorf("%w: InlineMax %d outside 1..%d", ErrInvalidOptions, o.InlineMax, MaxInlineMax)
	}
	if o.Presize < 0 {
		return nil, fmt.Errorf("%w: negative Presize %d", ErrInvalidOptions, o.Presize)
	}
	var opts []func(*xsync.MapConfig)
	if o.Presize > 0 {
		opts = append(opts, xsync.WithPresize(o.Presize))
	}
	return &Shard{
		m:         newPrimary(opts...),
		overflow:  xsync.NewMapOf[cid.CID, *record](),
		seed:      o.Seed,
		hashMask:  ^uint64(0),
		index:     btree.NewG(indexDegree, lessItem),
		inlineMax: o.InlineMax,
	}, nil
}

// newPrimary makes a primary map. Its keys are already well-mixed seeded
// hashes, so its hash function is the identity.
func newPrimary(opts ...func(*xsync.MapConfig)) *xsync.MapOf[uint64, *record] {
	return xsync.NewMapOfWithHasher[uint64, *record](func(h, _ uint64) uint64 { return h }, opts...)
}

// Lock acquires the shard's writer lock.
func (s *Shard) Lock() { s.mu.Lock() }

// Unlock releases the shard's writer lock.
func (s *Shard) Unlock() { s.mu.Unlock() }

// Count returns the number of values stored under k (0 when absent).
func (s *Shard) Count(k cid.CID) int {
	r := s.lookup(k)
	if r == nil {
		return 0
	}
	return r.count()
}

// Contains reports whether v is stored under k.
func (s *Shard) Contains(k, v cid.CID) bool {
	r := s.lookup(k)
	return r != nil && r.contains(v)
}

// AppendValues appends the values stored under k, in ascending order, to
// dst and returns the extended slice. It does not allocate when dst has
// room.
func (s *Shard) AppendValues(dst []cid.CID, k cid.CID) []cid.CID {
	r := s.lookup(k)
	if r == nil {
		return dst
	}
	return r.appendValues(dst)
}

// Keys returns the number of keys in the shard.
func (s *Shard) Keys() int { return int(s.keys.Load()) }

// Pairs returns the number of (key, value) pairs in the shard.
func (s *Shard) Pairs() int { return int(s.pairs.Load()) }

// Lookup returns k's entry, or false when k is absent. Lock-free.
//
// h must be k.Hash(seed) for the Options.Seed the shard was made with. A
// caller that picks the shard from the top bits of that same hash, as the
// store does, so hashes a key once per read; a wrong h only makes Lookup
// miss.
func (s *Shard) Lookup(k cid.CID, h uint64) (Entry, bool) {
	r := s.find(k, h)
	return Entry{r}, r != nil
}

// lookup returns k's record, or nil. Lock-free.
func (s *Shard) lookup(k cid.CID) *record { return s.find(k, k.Hash(s.seed)) }

// find returns the record of k, whose hash is h, or nil. Lock-free.
//
// The primary map is keyed by a seeded 64-bit hash of the key, which keeps
// a map entry at 16 bytes instead of 48; the record holds the full key and
// is checked. A key whose hash is already taken by another live key lives
// in the overflow map instead, which is consulted only while non-empty.
func (s *Shard) find(k cid.CID, h uint64) *record {
	if r, ok := s.m.Load(h & s.hashMask); ok && r.key == k {
		return r
	}
	if s.nOverflow.Load() != 0 {
		return s.findOverflow(k)
	}
	return nil
}

// findOverflow returns k's record from the overflow map, or nil; kept out
// of find so that find stays small enough to inline.
func (s *Shard) findOverflow(k cid.CID) *record {
	r, _ := s.overflow.Load(k)
	return r
}

// hash returns k's key in the primary map.
func (s *Shard) hash(k cid.CID) uint64 { return k.Hash(s.seed) & s.hashMask }

// slot returns k's current record (or nil) and whether k lives, or would
// live, in the primary map, where its key is h (hash & hashMask). The
// caller holds the lock.
func (s *Shard) slot(k cid.CID, h uint64) (prev *record, primary bool) {
	r, taken := s.m.Load(h)
	if taken && r.key == k {
		return r, true
	}
	if s.nOverflow.Load() != 0 {
		if r, ok := s.overflow.Load(k); ok {
			return r, false
		}
	}
	return nil, !taken
}

// publish makes next the state of k, replacing prev (either may be nil).
// h is k's key in the primary map and primary says whether k lives there
// (see slot). The caller holds the lock.
func (s *Shard) publish(k cid.CID, h uint64, primary bool, prev, next *record) {
	if prev != nil && prev.isTree() {
		s.trees.Add(-1)
	}
	if next != nil && next.isTree() {
		s.trees.Add(1)
	}
	if next != nil && next.isMulti() {
		next.asMulti().epoch = s.epoch
	}
	switch {
	case next == nil:
		if primary {
			s.m.Delete(h)
		} else {
			s.overflow.Delete(k)
			s.nOverflow.Add(-1)
		}
		s.index.Delete(itemOf(prev))
		s.keys.Add(-1)
		s.pairs.Add(-int64(prev.count()))
		return
	case prev == nil:
		s.keys.Add(1)
		s.pairs.Add(int64(next.count()))
		if !primary {
			s.nOverflow.Add(1)
		}
	default:
		s.pairs.Add(int64(next.count() - prev.count()))
	}
	if primary {
		s.m.Store(h, next)
	} else {
		s.overflow.Store(k, next)
	}
	s.index.ReplaceOrInsert(itemOf(next))
}

// Add stores v under k and reports whether the shard changed. The caller
// holds the lock.
//
// A new key costs one record from the shard's slab (see slab), one map
// entry and one index insert; the key is hashed once. A key that already
// holds two or more values usually keeps its record: Add swaps a new
// value set into it (see multi), one allocation, with no map store and no
// index update. It may do so only while no View can hold the record,
// since a View must keep the values it was taken with: every View bumps
// the shard's epoch, and a record published (or loaded) in an earlier
// epoch is replaced by a new record, as a change of form is.
func (s *Shard) Add(k, v cid.CID) bool {
	h := s.hash(k)
	prev, primary := s.slot(k, h)
	var next *record
	switch {
	case prev == nil:
		next = s.slab.single(k, v)
	case s.owns(prev):
		if changed, ok := prev.asMulti().addInPlace(v, s.inlineMax); ok {
			if changed {
				s.pairs.Add(1)
			}
			return changed
		}
		fallthrough
	default:
		if next = withValue(prev, k, v, s.inlineMax); next == prev {
			return false
		}
	}
	s.publish(k, h, primary, prev, next)
	return true
}

// owns reports whether r is a multi-value record that no View can hold,
// whose value set Add and Remove may therefore swap in place. The caller
// holds the lock.
func (s *Shard) owns(r *record) bool { return r.isMulti() && r.asMulti().epoch == s.epoch }

// Remove removes v from k's values and reports whether the shard changed.
// The caller holds the lock. Like Add, it swaps a new value set into the
// key's record when it may.
func (s *Shard) Remove(k, v cid.CID) bool {
	h := s.hash(k)
	prev, primary := s.slot(k, h)
	if prev == nil {
		return false
	}
	if s.owns(prev) {
		if changed, ok := prev.asMulti().removeInPlace(v, s.inlineMax); ok {
			if changed {
				s.pairs.Add(-1)
			}
			return changed
		}
	}
	next := withoutValue(prev, v, s.inlineMax)
	if next == prev {
		return false
	}
	s.publish(k, h, primary, prev, next)
	return true
}

// RemoveKey removes k and all its values and returns how many values it
// had. The caller holds the lock.
func (s *Shard) RemoveKey(k cid.CID) int {
	h := s.hash(k)
	prev, primary := s.slot(k, h)
	if prev == nil {
		return 0
	}
	n := prev.count()
	s.publish(k, h, primary, prev, nil)
	return n
}

// LSN returns the log sequence number of the last operation published in
// this shard. The caller holds the lock.
func (s *Shard) LSN() uint64 { return s.lsn }

// SetLSN records that the operation with log sequence number lsn has been
// published. The caller holds the lock.
func (s *Shard) SetLSN(lsn uint64) {
	if lsn > s.lsn {
		s.lsn = lsn
	}
}

// View returns a point-in-time, read-only view of the shard. It is O(1):
// the key index is cloned copy-on-write, and the epoch moves on so that
// no record the view holds is changed in place afterwards (see Add). The
// caller holds the lock; the view may be used after the lock is released,
// from any goroutine.
func (s *Shard) View() *View {
	s.epoch++
	return &View{index: s.index.Clone(), lsn: s.lsn}
}
