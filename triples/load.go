package triples

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/internal/bulk"
)

// Loader collects the triples of an empty Set for a bulk load, the fast
// path of recovery and import. Add may be called from several goroutines;
// Set.Load then sorts each index shard's entries once with a radix sort
// and builds its B-tree in key order and its map in bucket order, which
// is several times cheaper than inserting triple by triple.
//
// Records come from slabs of slabTriples triples, so the garbage
// collector marks a few large objects instead of millions of small ones;
// a slab is freed once none of its triples is referenced.
type Loader struct {
	set   *Set
	parts [3][]partLoader
	slabs sync.Pool // *[]Triple: the unused tail of a slab
}

type partLoader struct {
	mu   sync.Mutex
	ents []loadEnt
}

// loadEnt is one triple of one index: the first 8 bytes of its key and of
// its value (sort keys) and its record.
type loadEnt struct {
	hi, vhi uint64
	r       *Triple
}

// slabTriples is the number of triples in one slab: 96 KiB, above the
// runtime's small-object limit, so each slab is a single large object.
const slabTriples = 1024

// NewLoader returns a Loader for s.
func (s *Set) NewLoader() *Loader {
	l := &Loader{set: s}
	for _, o := range Orders {
		l.parts[o] = make([]partLoader, len(s.idx[o]))
	}
	return l
}

// Add records ts (copied; no zero components, checked by the caller).
// Duplicates are fine: Load keeps one.
func (l *Loader) Add(ts ...Triple) {
	slab := l.slab()
	for i := range ts {
		l.add(slab, ts[i])
	}
	l.slabs.Put(slab)
}

// AddSPO records the triples of subject s whose (predicate, object)
// values are flattened in vals, as a snapshot's SPO entries hold them
// (len(vals) even; no zero CIDs, checked by the caller).
func (l *Loader) AddSPO(s cid.CID, vals []cid.CID) {
	slab := l.slab()
	for i := 0; i+1 < len(vals); i += 2 {
		l.add(slab, Triple{s, vals[i], vals[i+1]})
	}
	l.slabs.Put(slab)
}

func (l *Loader) slab() *[]Triple {
	if slab, _ := l.slabs.Get().(*[]Triple); slab != nil {
		return slab
	}
	return new([]Triple)
}

// add copies t into the slab and records it in the three indexes.
func (l *Loader) add(slab *[]Triple, t Triple) {
	if len(*slab) == 0 {
		*slab = make([]Triple, slabTriples)
	}
	r := &(*slab)[0]
	*r = t
	*slab = (*slab)[1:]
	for _, o := range Orders {
		k := o.key(r)
		p := &l.parts[o][l.set.hash(k)>>l.set.shift]
		p.mu.Lock()
		p.ents = append(p.ents, loadEnt{hiOf(k), hiOf(o.val(r)[0]), r})
		p.mu.Unlock()
	}
}

// parallel runs fn(0..n-1) on up to workers goroutines (the caller's
// among them).
func parallel(n, workers int, fn func(i int)) {
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func() {
		for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
			fn(int(i))
		}
	}
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// Load publishes what l collected into s, which must be empty, leaving
// out the triples for which drop (if not nil) returns true; lsn becomes
// every shard's last LSN. Shards load in parallel on GOMAXPROCS
// goroutines. It takes every lock itself; no batch may run meanwhile.
func (s *Set) Load(l *Loader, lsn uint64, drop func(*Triple) bool) error {
	s.LockAll()
	defer s.UnlockAll()
	if s.Len() != 0 {
		return errors.New("triples: Load into a non-empty set")
	}
	type job struct {
		o Order
		i int
	}
	var jobs []job
	for _, o := range Orders {
		for i := range s.idx[o] {
			jobs = append(jobs, job{o, i})
		}
	}
	parallel(len(jobs), runtime.GOMAXPROCS(0), func(j int) {
		o, i := jobs[j].o, jobs[j].i
		p := &l.parts[o][i]
		s.idx[o][i].load(p.ents, s.hash, drop)
		s.idx[o][i].setLSN(lsn)
		p.ents = nil
	})
	return nil
}

// load builds the shard, which is empty, from ents. The caller holds the
// lock.
func (sh *shard) load(ents []loadEnt, hash func(cid.CID) uint64, drop func(*Triple) bool) {
	o := sh.order
	// Sort by value prefix, then (stable) by key prefix: by key and value,
	// but for the rare ties in the first 8 bytes, which the pass below
	// settles.
	scratch := make([]loadEnt, len(ents))
	bulk.Sort(ents, scratch, 64, func(e *loadEnt) uint64 { return e.vhi })
	bulk.Sort(ents, scratch, 64, func(e *loadEnt) uint64 { return e.hi })
	compareEnt := func(a, b loadEnt) int {
		if c := cid.Compare(o.key(a.r), o.key(b.r)); c != 0 {
			return c
		}
		return comparePair(o.val(a.r), o.val(b.r))
	}
	for i := 0; i < len(ents); {
		j := i + 1
		sorted := true
		for ; j < len(ents) && ents[j].hi == ents[i].hi; j++ {
			if ents[j].vhi == ents[j-1].vhi || o.key(ents[j].r) != o.key(ents[j-1].r) {
				sorted = sorted && compareEnt(ents[j-1], ents[j]) <= 0
			}
		}
		if !sorted {
			slices.SortFunc(ents[i:j], compareEnt)
		}
		i = j
	}
	sh.overflow = nil
	sh.index = o.newIndex()
	type final struct {
		h uint64
		r *Triple
	}
	finals := make([]final, 0, len(ents))
	var keys, total, trees int64
	var vals []pair
	for i := 0; i < len(ents); {
		r0 := ents[i].r
		k := o.key(r0)
		vals = vals[:0]
		var one *Triple
		j := i
		for ; j < len(ents) && ents[j].hi == ents[i].hi && o.key(ents[j].r) == k; j++ {
			r := ents[j].r
			v := o.val(r)
			if (len(vals) > 0 && vals[len(vals)-1] == v) || (drop != nil && drop(r)) {
				continue
			}
			vals = append(vals, v)
			one = r
		}
		i = j
		if len(vals) == 0 {
			continue
		}
		rec := one
		if len(vals) > 1 {
			rec = o.fromSorted(k, slices.Clone(vals), sh.inlineMax)
			if o.isTree(rec) {
				trees++
			}
		}
		if sh.index != nil {
			sh.index.ReplaceOrInsert(item{hiOf(k), rec})
		}
		finals = append(finals, final{hash(k), rec})
		keys++
		total += int64(len(vals))
	}
	mask := bulk.BucketMask(len(finals))
	bulk.Sort(finals, nil, bulk.BucketWidth(mask), func(f *final) uint64 { return f.h >> 7 & mask })
	sh.m = newPrimary(xsyncPresize(len(finals)))
	for _, f := range finals {
		if _, taken := sh.m.LoadOrStore(f.h&sh.hashMask, f.r); taken {
			if sh.overflow == nil {
				sh.overflow = newOverflow()
			}
			sh.overflow.Store(o.key(f.r), f.r) // another key has this hash
			sh.nOverflow.Add(1)
		}
	}
	sh.keys.Store(keys)
	sh.triples.Store(total)
	sh.trees.Store(trees)
}
