package shard

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
	"github.com/puzpuzpuz/xsync/v3"
)

// indexDegree is the B-tree degree of the shard's key index.
const indexDegree = 32

// DefaultInlineMax is the default largest value set kept as a sorted slice.
const DefaultInlineMax = 32

// MaxInlineMax bounds Options.InlineMax.
const MaxInlineMax = 4096

// ErrBadOptions is returned (wrapped) by New for invalid Options.
var ErrBadOptions = errors.New("shard: invalid options")

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
	m         *xsync.MapOf[cid.CID, *record]
	index     *btree.BTreeG[*record]
	inlineMax int
	lsn       uint64 // last log sequence number published; guarded by mu

	keys  atomic.Int64
	pairs atomic.Int64
}

func lessRecord(a, b *record) bool { return cid.Less(a.key, b.key) }

// New returns an empty shard.
func New(o Options) (*Shard, error) {
	if o.InlineMax == 0 {
		o.InlineMax = DefaultInlineMax
	}
	if o.InlineMax < 1 || o.InlineMax > MaxInlineMax {
		return nil, fmt.Errorf("%w: InlineMax %d outside 1..%d", ErrBadOptions, o.InlineMax, MaxInlineMax)
	}
	if o.Presize < 0 {
		return nil, fmt.Errorf("%w: negative Presize %d", ErrBadOptions, o.Presize)
	}
	seed := o.Seed
	hasher := func(k cid.CID, s uint64) uint64 { return k.Hash(s ^ seed) }
	var opts []func(*xsync.MapConfig)
	if o.Presize > 0 {
		opts = append(opts, xsync.WithPresize(o.Presize))
	}
	return &Shard{
		m:         xsync.NewMapOfWithHasher[cid.CID, *record](hasher, opts...),
		index:     btree.NewG(indexDegree, lessRecord),
		inlineMax: o.InlineMax,
	}, nil
}

// Lock acquires the shard's writer lock.
func (s *Shard) Lock() { s.mu.Lock() }

// Unlock releases the shard's writer lock.
func (s *Shard) Unlock() { s.mu.Unlock() }

// Count returns the number of values stored under k (0 when absent).
func (s *Shard) Count(k cid.CID) int {
	r, ok := s.m.Load(k)
	if !ok {
		return 0
	}
	return r.count()
}

// Contains reports whether v is stored under k.
func (s *Shard) Contains(k, v cid.CID) bool {
	r, ok := s.m.Load(k)
	return ok && r.contains(v)
}

// AppendValues appends the values stored under k, in ascending order, to
// dst and returns the extended slice. It does not allocate when dst has
// room.
func (s *Shard) AppendValues(dst []cid.CID, k cid.CID) []cid.CID {
	r, ok := s.m.Load(k)
	if !ok {
		return dst
	}
	return r.appendValues(dst)
}

// Keys returns the number of keys in the shard.
func (s *Shard) Keys() int { return int(s.keys.Load()) }

// Pairs returns the number of (key, value) pairs in the shard.
func (s *Shard) Pairs() int { return int(s.pairs.Load()) }

// publish makes next the state of k, replacing prev (either may be nil).
// The caller holds the lock.
func (s *Shard) publish(k cid.CID, prev, next *record) {
	switch {
	case next == nil:
		s.m.Delete(k)
		s.index.Delete(prev)
		s.keys.Add(-1)
		s.pairs.Add(-int64(prev.count()))
		return
	case prev == nil:
		s.keys.Add(1)
		s.pairs.Add(int64(next.count()))
	default:
		s.pairs.Add(int64(next.count() - prev.count()))
	}
	s.m.Store(k, next)
	s.index.ReplaceOrInsert(next)
}

func (s *Shard) load(k cid.CID) *record {
	r, _ := s.m.Load(k)
	return r
}

// Add stores v under k and reports whether the shard changed. The caller
// holds the lock.
func (s *Shard) Add(k, v cid.CID) bool {
	prev := s.load(k)
	next := withValue(prev, k, v, s.inlineMax)
	if next == prev {
		return false
	}
	s.publish(k, prev, next)
	return true
}

// Remove removes v from k's values and reports whether the shard changed.
// The caller holds the lock.
func (s *Shard) Remove(k, v cid.CID) bool {
	prev := s.load(k)
	if prev == nil {
		return false
	}
	next := withoutValue(prev, v, s.inlineMax)
	if next == prev {
		return false
	}
	s.publish(k, prev, next)
	return true
}

// RemoveKey removes k and all its values and returns how many values it
// had. The caller holds the lock.
func (s *Shard) RemoveKey(k cid.CID) int {
	prev := s.load(k)
	if prev == nil {
		return 0
	}
	n := prev.count()
	s.publish(k, prev, nil)
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
// the key index is cloned copy-on-write. The caller holds the lock; the
// view may be used after the lock is released, from any goroutine.
func (s *Shard) View() *View {
	return &View{index: s.index.Clone(), lsn: s.lsn}
}
