package shard

import (
	"cmp"
	"errors"
	"slices"
	"sync"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
	"github.com/puzpuzpuz/xsync/v3"
)

// Loader collects the entries of an empty shard for a bulk load, the fast
// path of recovery from a snapshot. Add, AddSingles, AddOp and AddOps may
// be called from several goroutines (batches are cheaper there: each call
// takes the lock once); Shard.Load then sorts once and builds the map and
// the index, which is several times cheaper than one Shard.Add per pair.
//
// Single-value records, nearly all of a typical store, are carved out of
// a slab (see slab).
type Loader struct {
	s       *Shard
	mu      sync.Mutex
	slab    slab        // single-value records
	recs    []loadEntry // every record added, in arrival order
	order   []loadKey   // sort keys of recs; pointer-free, so sorting is cheap
	ops     []loadOp    // operations to apply on top, in log order
	opOrder []loadKey   // sort keys of ops
}

// OpKind is the kind of a logged operation a Loader folds into a load.
type OpKind uint8

// The operations AddOp accepts.
const (
	OpAdd       OpKind = iota + 1 // add a value to a key
	OpRemove                      // remove a value from a key
	OpRemoveKey                   // remove a key and all its values
)

type loadOp struct {
	key, val cid.CID
	kind     OpKind
}

// loadEntry is a record added and its map hash, taken while the key is at
// hand so that Load need not read the record again.
type loadEntry struct {
	r    *record
	hash uint64 // Shard.hash of the key
}

// loadKey orders recs[ref] by the first 8 bytes of its key.
type loadKey struct {
	hi  uint64
	ref uint32
	n   uint32 // an entry's number of values (its record is not read)
}

// maxLoaderRecords bounds one shard's entries, and separately its
// operations, by what loadKey can index.
const maxLoaderRecords = 1<<32 - 1

// NewLoader returns a Loader for s.
func (s *Shard) NewLoader() *Loader { return &Loader{s: s} }

// Grow reserves room for about n more entries, to spare the appends
// their regrowth when the total is known in advance.
func (l *Loader) Grow(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = slices.Grow(l.recs, n)
	l.order = slices.Grow(l.order, n)
}

// Add records key k with values vals (ascending, no duplicates; copied).
// The same key may be added several times: Load merges the value sets.
func (l *Loader) Add(k cid.CID, vals []cid.CID) {
	if len(vals) == 0 {
		return
	}
	var r *record
	if len(vals) > 1 {
		r = fromSorted(k, vals, l.s.inlineMax)
	}
	hi, h := hiOf(k), l.s.hash(k) // outside the lock, which decoders share
	l.mu.Lock()
	defer l.mu.Unlock()
	if r == nil {
		r = l.slab.single(k, vals[0])
	}
	l.order = append(l.order, loadKey{hi, uint32(len(l.recs)), uint32(len(vals))})
	l.recs = append(l.recs, loadEntry{r, h})
}

// Single is a key with one value, the common entry of a bulk load.
type Single struct{ Key, Value cid.CID }

// AddSingles is Add of each of ps, a key with its one value, under one
// acquisition of the lock. Where several goroutines feed the loaders of
// all shards at once, as a snapshot's decoders do, one Add per entry
// moves the lock's cache line, and the lines the entry is written to,
// from core to core on nearly every call; a batch moves them once.
func (l *Loader) AddSingles(ps []Single) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range ps {
		p := &ps[i]
		r := l.slab.single(p.Key, p.Value)
		l.order = append(l.order, loadKey{hiOf(p.Key), uint32(len(l.recs)), 1})
		l.recs = append(l.recs, loadEntry{r, l.s.hash(p.Key)})
	}
}

// AddOp records an operation to apply on top of the entries: Load applies
// each key's operations in the order AddOp received them, which must be
// log order. This folds the WAL records after a snapshot into its load, so
// they cost a sort and a merge instead of one random index insert each.
func (l *Loader) AddOp(kind OpKind, k, v cid.CID) {
	l.AddOps([]Op{{Kind: kind, Key: k, Value: v}})
}

// Op is an operation for AddOps: Value is unused for OpRemoveKey.
type Op struct {
	Kind       OpKind
	Key, Value cid.CID
}

// AddOps is AddOp of each of ops, in order, under one acquisition of the
// lock (see AddSingles).
func (l *Loader) AddOps(ops []Op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range ops {
		o := &ops[i]
		l.opOrder = append(l.opOrder, loadKey{hi: hiOf(o.Key), ref: uint32(len(l.ops))})
		l.ops = append(l.ops, loadOp{key: o.Key, val: o.Value, kind: o.Kind})
	}
}

// Load publishes everything l collected into s, which must be empty: the
// entries, with the operations applied on top. lsn becomes the shard's last
// LSN. It takes the lock itself.
func (s *Shard) Load(l *Loader, lsn uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys.Load() != 0 {
		return errors.New("shard: Load into a non-empty shard")
	}
	l.mu.Lock() // no Add may race with the load
	defer l.mu.Unlock()
	if uint64(len(l.recs)) > maxLoaderRecords || uint64(len(l.ops)) > maxLoaderRecords {
		return errors.New("shard: too many entries for one bulk load")
	}
	recs, ops := l.recs, l.ops
	sc := getLoadScratch()
	defer sc.put()
	scratch := grown(&sc.keys, max(len(l.order), len(l.opOrder))) // for both sorts
	order := sortKeys(l.order, scratch, func(ref uint32) *cid.CID { return &recs[ref].r.key })
	opOrder := sortKeys(l.opOrder, scratch, func(ref uint32) *cid.CID { return &ops[ref].key })
	// A presized map avoids growing it key by key.
	s.m = newPrimary(xsync.WithPresize(len(order) + len(opOrder)))
	var keys, pairs, trees int64
	// The loop merges in key order; the index is then built from the
	// items it collects (see buildIndex), and the map filled in the order
	// of its buckets, which turns a cache miss per key into a sweep.
	mask := bucketMask(len(order) + len(opOrder))
	finals := grown(&sc.finals, len(order)+len(opOrder))[:0]
	items := grown(&sc.items, len(order)+len(opOrder))[:0]
	for i, j := 0, 0; i < len(order) || j < len(opOrder); {
		// The next key is the smaller of the next entry's and the next
		// operation's. An entry loaded as is brings its hash and value
		// count along, so its record is not read here at all: in sorted
		// order it would be a cache miss.
		var r *record
		var hi, h uint64
		var n int
		derived := false // r was built here: h and n are computed from it
		fromEntry := i < len(order)
		if fromEntry && j < len(opOrder) {
			if a, b := order[i].hi, opOrder[j].hi; a != b {
				fromEntry = a < b
			} else {
				fromEntry = cid.Compare(recs[order[i].ref].r.key, ops[opOrder[j].ref].key) <= 0
			}
		}
		if fromEntry {
			hi = order[i].hi
			if end := runEnd(order, recs, i); end > i+1 {
				r, i = s.mergeEntries(order[i:end], recs), end
				derived = true
			} else {
				e := &recs[order[i].ref]
				r, h, n = e.r, e.hash, int(order[i].n)
				i++
			}
		} else {
			hi = opOrder[j].hi
		}
		if j < len(opOrder) && opOrder[j].hi == hi {
			k := ops[opOrder[j].ref].key
			if r != nil {
				k = r.key
			}
			for ; j < len(opOrder) && opOrder[j].hi == hi && ops[opOrder[j].ref].key == k; j++ {
				derived = true
				switch o := &ops[opOrder[j].ref]; {
				case o.kind == OpAdd && r == nil:
					r = l.slab.single(k, o.val)
				case o.kind == OpAdd:
					r = withValue(r, k, o.val, s.inlineMax)
				case o.kind == OpRemove && r != nil:
					r = withoutValue(r, o.val, s.inlineMax)
				case o.kind == OpRemoveKey:
					r = nil
				}
			}
		}
		if r == nil {
			continue
		}
		if derived {
			h, n = s.hash(r.key), r.count()
		}
		items = append(items, item{hi, r})
		finals = append(finals, finalRec{h, r})
		keys++
		pairs += int64(n)
		if n > 1 && r.isTree() {
			trees++
		}
	}
	s.index = buildIndex(items)
	sc.items = items
	bucket := func(f *finalRec) uint64 { return f.hash >> 7 & mask }
	sc.finals = finals // as appended (within the capacity grown above)
	for _, f := range radixSort(finals, grown(&sc.tmp, len(finals)), bucketWidth(mask), bucket) {
		if _, taken := s.m.LoadOrStore(f.hash, f.r); taken {
			s.overflow.Store(f.r.key, f.r) // another key has this hash
			s.nOverflow.Add(1)
		}
	}
	l.recs, l.order, l.ops, l.opOrder, l.slab = nil, nil, nil, nil, slab{}
	s.keys.Store(keys)
	s.pairs.Store(pairs)
	s.trees.Store(trees)
	s.SetLSN(lsn)
	return nil
}

// buildIndex returns a key index holding items, which are in ascending
// key order, inserting them in descending order. google/btree has no bulk
// load, and the order of insertion decides how much memory its nodes
// take. A full node (2*indexDegree-1 items) splits in the middle; the
// lower half keeps the node and its item array, the upper half moves to a
// new node whose array fits it exactly. In ascending order every insert
// then lands in that new node, whose array grows by doubling: each leaf
// ends half full in an array of twice the size, with a garbage array of
// the old size left behind, about 49 bytes touched per key. In descending
// order every insert lands in the old node's array, which has room, and
// each node split off is final with an array it fills: about 16 bytes per
// key, a third of the pages to fault in, for the price of shifting a leaf
// by one item per insert. The tree's shape is the same either way.
func buildIndex(items []item) *btree.BTreeG[item] {
	t := btree.NewG(indexDegree, lessItem)
	for i := len(items) - 1; i >= 0; i-- {
		t.ReplaceOrInsert(items[i])
	}
	return t
}

// finalRec is a record Load publishes, with its map hash.
type finalRec struct {
	hash uint64
	r    *record
}

// loadScratch is the temporary memory of one Load: the sort scratch, the
// records it publishes and the scratch of their bucket sort, and the
// index's items, together 64 bytes per key. Loads of one recovery reuse it through loadScratchPool,
// so that the shards loaded one after another on a core write into memory
// already touched instead of faulting in fresh pages for each shard (the
// store pauses the collector during recovery, which would otherwise hand
// freed memory back for reuse).
type loadScratch struct {
	keys        []loadKey
	finals, tmp []finalRec
	items       []item // the index's items in key order
}

var loadScratchPool sync.Pool // of *loadScratch

func getLoadScratch() *loadScratch {
	if sc, ok := loadScratchPool.Get().(*loadScratch); ok {
		return sc
	}
	return new(loadScratch)
}

// put returns sc to the pool, first dropping the record pointers it holds
// so that the pool keeps no record alive.
func (sc *loadScratch) put() {
	clear(sc.finals[:cap(sc.finals)])
	clear(sc.tmp[:cap(sc.tmp)])
	clear(sc.items[:cap(sc.items)])
	sc.finals, sc.tmp, sc.items = sc.finals[:0], sc.tmp[:0], sc.items[:0]
	loadScratchPool.Put(sc)
}

// grown returns (*buf)[:n], growing *buf first if its capacity is short.
func grown[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	*buf = (*buf)[:n]
	return *buf
}

// runEnd returns the index after the run of consecutive entries of order,
// from i on, that hold the key of order[i]: i+1 unless the key's value set
// was split over several entries.
func runEnd(order []loadKey, recs []loadEntry, i int) int {
	j := i + 1
	for j < len(order) && order[j].hi == order[i].hi && recs[order[j].ref].r.key == recs[order[i].ref].r.key {
		j++
	}
	return j
}

// mergeEntries returns the record of the key of run, a run of entries
// with the same key (see runEnd), merging their value sets.
func (s *Shard) mergeEntries(run []loadKey, recs []loadEntry) *record {
	var vals []cid.CID // a value set split over several entries
	for _, x := range run {
		vals = recs[x.ref].r.appendValues(vals)
	}
	slices.SortFunc(vals, cid.Compare)
	return fromSorted(recs[run[0].ref].r.key, slices.Compact(vals), s.inlineMax)
}

// sortKeys sorts keys by key and, among equal keys, by ref (arrival
// order, which keys are in on entry). key returns the full key of a ref:
// it settles the order of the rare keys that share their first 8 bytes.
//
// The radix sort orders only the top topBits bits of the prefixes, in two
// passes instead of the six all 64 bits take; the runs that share those
// bits, of length one or two for the random keys of a shard's hundreds
// of thousands, are then sorted by the rest of the prefix: a small run by
// a comparison sort, a large one (keys alike in their top bits) by a
// radix sort of its own.
func sortKeys(keys, scratch []loadKey, key func(ref uint32) *cid.CID) []loadKey {
	radixSort(keys, scratch, topBits, topKey) // stable: equal keys stay in arrival order
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && topKey(&keys[j]) == topKey(&keys[i]) {
			j++
		}
		switch run := keys[i:j]; {
		case len(run) > smallRun:
			radixSort(run, scratch, 64-topBits, hiKey)
		case len(run) > 1:
			slices.SortStableFunc(run, func(a, b loadKey) int { return cmp.Compare(a.hi, b.hi) })
		}
		i = j
	}
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j].hi == keys[i].hi {
			j++
		}
		if j > i+1 {
			slices.SortStableFunc(keys[i:j], func(a, b loadKey) int {
				return cid.Compare(*key(a.ref), *key(b.ref))
			})
		}
		i = j
	}
	return keys
}

// topBits is how many of a prefix's top bits sortKeys radix-sorts: two
// passes of the radix sort's 11-bit digits.
const topBits = 22

// smallRun is the longest run of prefixes alike in their top bits that
// sortKeys sorts by comparison.
const smallRun = 64

func topKey(k *loadKey) uint64 { return k.hi >> (64 - topBits) }

// fromSorted builds a record from a non-empty ascending, duplicate-free
// value slice, which it copies (the caller keeps it).
func fromSorted(k cid.CID, vals []cid.CID, inlineMax int) *record {
	switch {
	case len(vals) == 1:
		return newSingle(k, vals[0])
	case len(vals) <= inlineMax:
		return newSmall(k, vals)
	}
	t := btree.NewG(valueDegree, lessCID)
	for _, v := range vals {
		t.ReplaceOrInsert(v)
	}
	return newTree(k, t)
}
