package triples

import (
	"cmp"
	"errors"
	"runtime"
	"slices"
	"sync"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/internal/bulk"
	"github.com/puzpuzpuz/xsync/v3"
)

// Loader collects the triples of an empty Set for a bulk load, the fast
// path of recovery and import. Add and AddSPO may be called from several
// goroutines; they only copy triples into slabs, taking no lock per
// triple. Set.Load then partitions the triples by index shard, sorts each
// shard's entries with a radix sort and builds its map in bucket order
// (and SPO's B-tree in key order): several times cheaper than inserting
// triple by triple.
//
// The records are the slabs' elements: slabs of slabTriples triples, so
// the garbage collector marks a few large objects instead of millions of
// small ones. A slab is freed once none of its triples is referenced.
type Loader struct {
	set  *Set
	pool sync.Pool // *slab being filled
	mu   sync.Mutex
	all  slabs              // every slab handed out
	drop func(*Triple) bool // see SetDrop
}

// SetDrop has Load leave out every triple added for which drop returns
// true (such as those the WAL deletes after a snapshot). Load calls it
// once per triple added, on one goroutine, before it builds anything: a
// filter that rejects most triples at a glance keeps that pass cheap.
func (l *Loader) SetDrop(drop func(*Triple) bool) { l.drop = drop }

// slab is a block of triples, filled from the front.
type slab struct {
	ts []Triple
	n  int // filled
}

// slabTriples is the number of triples in one slab: 96 KiB, above the
// runtime's small-object limit, so each slab is a single large object.
const slabTriples = 1024 // a power of two: refs split by shifting

// NewLoader returns a Loader for s.
func (s *Set) NewLoader() *Loader { return &Loader{set: s} }

// Add records ts (copied; no zero components, checked by the caller).
// Duplicates are fine: Load keeps one.
func (l *Loader) Add(ts ...Triple) {
	sl := l.slab()
	for _, t := range ts {
		sl = l.add(sl, t)
	}
	l.pool.Put(sl)
}

// AddSPO records the triples of subject s whose (predicate, object)
// values are flattened in vals, as a snapshot's SPO entries hold them
// (len(vals) even; no zero CIDs, checked by the caller).
func (l *Loader) AddSPO(s cid.CID, vals []cid.CID) {
	sl := l.slab()
	for i := 0; i+1 < len(vals); i += 2 {
		sl = l.add(sl, Triple{s, vals[i], vals[i+1]})
	}
	l.pool.Put(sl)
}

func (l *Loader) slab() *slab {
	if sl, _ := l.pool.Get().(*slab); sl != nil {
		return sl
	}
	return l.newSlab()
}

func (l *Loader) newSlab() *slab {
	sl := &slab{ts: make([]Triple, slabTriples)}
	l.mu.Lock()
	l.all = append(l.all, sl)
	l.mu.Unlock()
	return sl
}

// add copies t into sl, or into a new slab when sl is full, and returns
// the slab to go on with.
func (l *Loader) add(sl *slab, t Triple) *slab {
	if sl.n == len(sl.ts) {
		sl = l.newSlab()
	}
	sl.ts[sl.n] = t
	sl.n++
	return sl
}

// Len returns the number of triples added so far (duplicates included).
// Not safe to call concurrently with Add.
func (l *Loader) Len() int {
	n := 0
	for _, sl := range l.all {
		n += sl.n
	}
	return n
}

// loadEnt is one triple of one index shard: its sort key (see Load; for
// SPO the first 8 bytes of its key, set by partition), the first 8 bytes
// of its value, its key's hash and its record. Load reads a record only
// where entries share a sort key, so that a key with one value costs no
// cache miss on its triple.
//
// It holds no pointer (the record is a slab position, see slabs.at), so
// the garbage collector does not scan the millions of entries a load
// sorts: scanning them cost more than sorting them.
type loadEnt struct {
	k, vhi, h uint64
	ref       uint32
}

// slabs are a load's slabs; a ref is slab<<10 | index.
type slabs []*slab

func (ss slabs) at(ref uint32) *Triple { return &ss[ref>>10].ts[ref&(slabTriples-1)] }

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
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	work := func() {
		for i := range next {
			fn(i)
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

// Load publishes what l collected into s, which must be empty; lsn
// becomes every shard's last LSN. Work runs on GOMAXPROCS goroutines. It
// takes every lock itself; no batch may run meanwhile.
//
// Each index's entries are first partitioned by shard. SPO entries are
// then sorted by key (the B-tree is built in key order, and the map
// filled in bucket order afterwards); POS and OSP entries, which need no
// order but grouping by key, are sorted once by their key's hash with the
// map's bucket bits first, which groups them and gives the bucket order
// in one sort.
func (s *Set) Load(l *Loader, lsn uint64) error {
	s.LockAll()
	defer s.UnlockAll()
	if s.Len() != 0 {
		return errors.New("triples: Load into a non-empty set")
	}
	if uint64(len(l.all)) > 1<<22 {
		return errors.New("triples: too many triples for one bulk load")
	}
	workers := runtime.GOMAXPROCS(0)
	if l.drop != nil {
		for _, sl := range l.all {
			for i := range sl.n {
				if l.drop(&sl.ts[i]) {
					sl.ts[i] = Triple{} // a zero subject: partition skips it
				}
			}
		}
	}
	var parts [3][][]loadEnt
	parallel(len(Orders), workers, func(i int) { parts[i] = s.partition(Orders[i], l.all) })
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
	parallel(len(jobs), workers, func(j int) {
		o, i := jobs[j].o, jobs[j].i
		s.idx[o][i].load(parts[o][i], l.all)
		s.idx[o][i].setLSN(lsn)
		parts[o][i] = nil
	})
	l.all = nil
	return nil
}

// partition returns the entries of index o, one slice per shard.
func (s *Set) partition(o Order, slabs []*slab) [][]loadEnt {
	n := 0
	for _, sl := range slabs {
		n += sl.n
	}
	hashes := make([]uint64, 0, n)
	counts := make([]int, len(s.idx[o]))
	for _, sl := range slabs {
		for i := range sl.n {
			if sl.ts[i].S.IsZero() {
				continue // dropped
			}
			h := s.hash(o.key(&sl.ts[i]))
			hashes = append(hashes, h)
			counts[h>>s.shift]++
		}
	}
	parts := make([][]loadEnt, len(counts))
	for i, c := range counts {
		parts[i] = make([]loadEnt, 0, c)
	}
	j := 0
	for si, sl := range slabs {
		for i := range sl.n {
			r := &sl.ts[i]
			if r.S.IsZero() {
				continue
			}
			h := hashes[j]
			j++
			var k uint64
			if o == SPO {
				k = hiOf(o.key(r))
			}
			parts[h>>s.shift] = append(parts[h>>s.shift], loadEnt{k: k, h: h, vhi: hiOf(o.val(r)[0]), ref: uint32(si<<10 | i)})
		}
	}
	return parts
}

// load builds the shard, which is empty, from ents. The caller holds the
// lock.
func (sh *shard) load(ents []loadEnt, ss slabs) {
	o := sh.order
	mask := bulk.BucketMask(len(ents))
	width := uint(64)
	if sh.index == nil {
		// Sorted by map bucket only: a few radix passes; the entries of
		// one bucket (a handful, or a hot key's) are sorted by sortRun.
		for i := range ents {
			ents[i].k = ents[i].h >> 7 & mask
		}
		width = bulk.BucketWidth(mask)
	}
	bulk.Sort(ents, nil, width, func(e *loadEnt) uint64 { return e.k })
	type final struct {
		h uint64
		r *Triple
	}
	finals := make([]final, 0, len(ents))
	var keys, total, trees int64
	var vals []pair
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && ents[j].k == ents[i].k {
			j++
		}
		run := ents[i:j]
		i = j
		if len(run) > 1 {
			sortRun(o, run, ss) // by hash first: equal keys end up together
		}
		for len(run) > 0 {
			if len(run) == 1 || run[1].h != run[0].h {
				// A key with one value: its record is its triple, and
				// it is not even read here.
				if sh.index != nil {
					sh.index.ReplaceOrInsert(item{run[0].k, ss.at(run[0].ref)}) // SPO: k is the key prefix
				}
				finals = append(finals, final{run[0].h, ss.at(run[0].ref)})
				keys++
				total++
				run = run[1:]
				continue
			}
			k := o.key(ss.at(run[0].ref))
			vals = vals[:0]
			n := 0
			for ; n < len(run) && run[n].h == run[0].h && o.key(ss.at(run[n].ref)) == k; n++ {
				if v := o.val(ss.at(run[n].ref)); len(vals) == 0 || vals[len(vals)-1] != v {
					vals = append(vals, v)
				}
			}
			rec := ss.at(run[0].ref)
			if len(vals) > 1 {
				rec = o.fromSorted(k, slices.Clone(vals), sh.inlineMax)
				if o.isTree(rec) {
					trees++
				}
			}
			if sh.index != nil {
				sh.index.ReplaceOrInsert(item{hiOf(k), rec})
			}
			finals = append(finals, final{run[0].h, rec})
			keys++
			total += int64(len(vals))
			run = run[n:]
		}
	}
	// The map is filled in the order of its buckets: a sweep instead of
	// a cache miss per key.
	fmask := bulk.BucketMask(len(finals))
	if sh.index != nil || fmask != mask {
		bulk.Sort(finals, nil, bulk.BucketWidth(fmask), func(f *final) uint64 { return f.h >> 7 & fmask })
	}
	sh.m = newPrimary(xsync.WithPresize(len(finals)))
	sh.overflow = nil
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

// sortRun sorts entries with equal sort keys so that each key's entries
// are together with their values ascending: by key hash, key, value. A
// long run (a hot key) is radix-sorted by value prefix and then hash
// first, so that only ties there are compared in full.
func sortRun(o Order, run []loadEnt, ss slabs) {
	compare := func(a, b loadEnt) int {
		if a.h != b.h {
			return cmp.Compare(a.h, b.h)
		}
		ra, rb := ss.at(a.ref), ss.at(b.ref)
		if c := cid.Compare(o.key(ra), o.key(rb)); c != 0 {
			return c
		}
		if a.vhi != b.vhi {
			return cmp.Compare(a.vhi, b.vhi)
		}
		return comparePair(o.val(ra), o.val(rb))
	}
	if len(run) <= 32 {
		slices.SortFunc(run, compare)
		return
	}
	bulk.Sort(run, nil, 64, func(e *loadEnt) uint64 { return e.vhi })
	bulk.Sort(run, nil, 64, func(e *loadEnt) uint64 { return e.h })
	for i := 0; i < len(run); {
		j := i + 1
		one := true // a single key, not colliding hashes
		k := o.key(ss.at(run[i].ref))
		for j < len(run) && run[j].h == run[i].h {
			one = one && o.key(ss.at(run[j].ref)) == k
			j++
		}
		if !one {
			slices.SortFunc(run[i:j], compare)
			i = j
			continue
		}
		for ; i < j; i++ { // ties in the value prefix
			e := i + 1
			for e < j && run[e].vhi == run[i].vhi {
				e++
			}
			if e > i+1 {
				slices.SortFunc(run[i:e], compare)
			}
			i = e - 1
		}
	}
}
