package triples

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
	"github.com/puzpuzpuz/xsync/v3"
)

// indexDegree is the B-tree degree of a shard's key index.
const indexDegree = 64

// shard is one shard of one index: the records of the keys whose hash
// falls in it, in an xsync map (lock-free point reads) and, in SPO only, a
// B-tree (order, O(1) copy-on-write clones), and the mutex that
// serialises its writers. POS and OSP are only ever read by key (every
// ordered walk, ???, snapshots and exports, goes through SPO), so they
// keep no B-tree: that saves two of the three B-tree inserts of a triple
// and about 46 heap bytes.
type shard struct {
	mu        sync.Mutex
	order     Order
	m         *xsync.MapOf[uint64, *Triple]  // keyed by the key's hash
	overflow  *xsync.MapOf[cid.CID, *Triple] // keys whose hash is taken; made on first use
	nOverflow atomic.Int64                   // len(overflow), read first
	hashMask  uint64                         // all ones; tests narrow it
	index     *btree.BTreeG[item]            // nil in POS and OSP
	inlineMax int
	lsn       uint64 // last LSN published here; guarded by mu

	keys    atomic.Int64
	triples atomic.Int64 // values, that is triples, under all keys
	trees   atomic.Int64 // records whose values are a B-tree
}

// item is an entry of the key index: a record with the first 8 bytes of
// its key inline, so that searches compare integers.
type item struct {
	hi uint64
	r  *Triple
}

func hiOf(k cid.CID) uint64 { return binary.BigEndian.Uint64(k[:8]) }

func newShard(o Order, inlineMax int) *shard {
	return &shard{
		order:     o,
		m:         newPrimary(),
		hashMask:  ^uint64(0),
		index:     o.newIndex(),
		inlineMax: inlineMax,
	}
}

// newIndex returns an empty key index for order o: a B-tree for SPO, nil
// for the others.
func (o Order) newIndex() *btree.BTreeG[item] {
	if o != SPO {
		return nil
	}
	return btree.NewG(indexDegree, o.lessItem)
}

// newPrimary makes a primary map. Its keys are already well-mixed hashes,
// so its hash function is the identity.
func newPrimary(opts ...func(*xsync.MapConfig)) *xsync.MapOf[uint64, *Triple] {
	return xsync.NewMapOfWithHasher[uint64, *Triple](func(h, _ uint64) uint64 { return h }, opts...)
}

func newOverflow() *xsync.MapOf[cid.CID, *Triple] { return xsync.NewMapOf[cid.CID, *Triple]() }

func (o Order) lessItem(a, b item) bool {
	if a.hi != b.hi {
		return a.hi < b.hi
	}
	return cid.Less(o.key(a.r), o.key(b.r))
}

func (o Order) itemOf(r *Triple) item { return item{hiOf(o.key(r)), r} }

// lookup returns the record of k (whose hash is h), or nil. Lock-free.
func (s *shard) lookup(k cid.CID, h uint64) *Triple {
	if r, ok := s.m.Load(h & s.hashMask); ok && s.order.key(r) == k {
		return r
	}
	if s.nOverflow.Load() != 0 {
		if r, ok := s.overflow.Load(k); ok {
			return r
		}
	}
	return nil
}

// slot returns k's current record (or nil) and whether k lives, or would
// live, in the primary map. The caller holds the lock.
func (s *shard) slot(k cid.CID, h uint64) (prev *Triple, primary bool) {
	r, taken := s.m.Load(h & s.hashMask)
	if taken && s.order.key(r) == k {
		return r, true
	}
	if s.nOverflow.Load() != 0 {
		if r, ok := s.overflow.Load(k); ok {
			return r, false
		}
	}
	return nil, !taken
}

// apply applies changes (distinct values) to key k, whose hash is h, and
// returns how many triples the shard gained (negative: lost). The caller
// holds the lock.
func (s *shard) apply(k cid.CID, h uint64, changes []change) int {
	if s.nOverflow.Load() == 0 {
		// The common case in one map operation: look the key up and
		// store its new record under one bucket lock.
		var prev, next *Triple
		var delta int
		collided := false
		s.m.Compute(h&s.hashMask, func(old *Triple, loaded bool) (*Triple, bool) {
			if loaded && s.order.key(old) != k {
				collided = true // another key has this hash: see below
				return old, false
			}
			if loaded {
				prev = old
			}
			next, delta = s.order.update(prev, k, changes, s.inlineMax)
			return next, next == nil
		})
		if !collided {
			if next != prev {
				s.account(prev, next, delta, true)
			}
			return delta
		}
	}
	prev, primary := s.slot(k, h)
	next, delta := s.order.update(prev, k, changes, s.inlineMax)
	if next != prev {
		s.publish(k, h, primary, prev, next, delta)
	}
	return delta
}

// publish makes next the record of k, replacing prev (either may be nil);
// delta is the change in the number of values. The caller holds the lock.
func (s *shard) publish(k cid.CID, h uint64, primary bool, prev, next *Triple, delta int) {
	switch {
	case next != nil && primary:
		s.m.Store(h&s.hashMask, next)
	case next != nil:
		if s.overflow == nil {
			// Published to readers by nOverflow's increment in account.
			s.overflow = newOverflow()
		}
		s.overflow.Store(k, next)
	case primary:
		s.m.Delete(h & s.hashMask)
	default:
		s.overflow.Delete(k)
	}
	s.account(prev, next, delta, primary)
}

// account updates the counters and the key index after the map made next
// the record that replaced prev (either may be nil). The caller holds the
// lock.
func (s *shard) account(prev, next *Triple, delta int, primary bool) {
	o := s.order
	if prev != nil && o.isTree(prev) {
		s.trees.Add(-1)
	}
	if next != nil && o.isTree(next) {
		s.trees.Add(1)
	}
	s.triples.Add(int64(delta))
	switch {
	case next == nil:
		if !primary {
			s.nOverflow.Add(-1)
		}
		if s.index != nil {
			s.index.Delete(o.itemOf(prev))
		}
		s.keys.Add(-1)
		return
	case prev == nil:
		s.keys.Add(1)
		if !primary {
			s.nOverflow.Add(1)
		}
	}
	if s.index != nil {
		s.index.ReplaceOrInsert(o.itemOf(next))
	}
}

// records calls fn for every record of the shard, from its maps, until fn
// returns false. The caller holds the lock.
func (s *shard) records(fn func(*Triple) bool) {
	ok := true
	s.m.Range(func(_ uint64, r *Triple) bool { ok = fn(r); return ok })
	if ok && s.overflow != nil {
		s.overflow.Range(func(_ cid.CID, r *Triple) bool { return fn(r) })
	}
}

// size returns the number of keys in the maps. The caller holds the lock.
func (s *shard) size() int {
	n := s.m.Size()
	if s.overflow != nil {
		n += s.overflow.Size()
	}
	return n
}

// setLSN records that the operation with this LSN is published. The
// caller holds the lock.
func (s *shard) setLSN(lsn uint64) {
	if lsn > s.lsn {
		s.lsn = lsn
	}
}
