package triples

import (
	"cmp"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
)

// Batch applies a sequence of triple operations to a Set atomically:
//
//	b := set.Prepare(ops) // hashes and sorts, no lock
//	b.Lock()              // the shards it touches, in lock order
//	changed := b.Resolve()// which operations change the set
//	... log b.Changes() with an LSN ...
//	b.Publish(lsn)
//	b.Unlock()
//
// Between Lock and Unlock no other writer touches the batch's shards, and
// a consistent cut (LockAll) sees the batch before Lock or after Unlock:
// whole, in all three indexes, or not at all. Lock-free point reads may
// see it in one index before another while Publish runs.
//
// Preparation does the work that needs no lock (hashing each component,
// sorting the operations by shard and key for each index, allocating the
// record of each insert), so that two goroutines' batches overlap: one
// prepares while the other holds the locks. Publish applies the three
// indexes on up to GOMAXPROCS goroutines, a shard on one goroutine at a
// time, and all of one key's changes with one new record.
type Batch struct {
	set     *Set
	ops     []Op
	hash    [][3]uint64 // per operation: the hashes of S, P and O
	recs    []*Triple   // per insert: the record the indexes share
	ord     [3][]ref    // per index: the operations by shard, key, position
	net     []int8      // per operation: +1 inserts, -1 deletes, 0 nothing
	locked  [3][]int32  // per index: the shards locked, ascending
	changes []Op        // the net changes, set by Resolve
}

// ref is an operation's position, sorted by the hash of its key.
type ref struct {
	h uint64
	i int32
}

// Prepare returns a batch of ops (in order; validated by the caller: no
// zero CID). It takes no lock.
func (s *Set) Prepare(ops []Op) *Batch {
	b, _ := batchPool.Get().(*Batch)
	if b == nil {
		b = new(Batch)
	}
	b.set, b.ops = s, ops
	b.hash = grow(b.hash, len(ops))
	b.recs = grow(b.recs, len(ops))
	for i := range ops {
		t := &ops[i].Triple
		b.hash[i] = [3]uint64{s.hash(t.S), s.hash(t.P), s.hash(t.O)}
		b.recs[i] = nil
		if !ops[i].Delete {
			r := *t
			b.recs[i] = &r
		}
	}
	for _, o := range Orders {
		refs := grow(b.ord[o], len(ops))
		for i := range refs {
			refs[i] = ref{b.hash[i][o], int32(i)}
		}
		slices.SortFunc(refs, func(x, y ref) int {
			if x.h != y.h {
				return cmp.Compare(x.h, y.h)
			}
			tx, ty := &ops[x.i].Triple, &ops[y.i].Triple
			if c := cid.Compare(o.key(tx), o.key(ty)); c != 0 {
				return c
			}
			if o == SPO { // equal triples next to each other, in order
				if c := comparePair(o.val(tx), o.val(ty)); c != 0 {
					return c
				}
			}
			return cmp.Compare(x.i, y.i)
		})
		b.ord[o] = refs
	}
	return b
}

// batchPool recycles batches, so that a stream of large batches does not
// turn their scratch slices into garbage (Release).
var batchPool sync.Pool

// maxPooled is the largest batch whose slices Release keeps.
const maxPooled = 1 << 16

// Release hands the batch's scratch memory back for reuse. The batch and
// what Changes returned must not be used afterwards.
func (b *Batch) Release() {
	if len(b.ops) > maxPooled {
		return
	}
	clear(b.recs) // the records now belong to the indexes, or to nobody
	b.set, b.ops = nil, nil
	b.changes = b.changes[:0]
	batchPool.Put(b)
}

// grow returns s resized to n elements, reusing its storage when it can.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// Lock takes the locks of the shards the batch touches, in lock order.
func (b *Batch) Lock() {
	s := b.set
	for _, o := range Orders {
		b.locked[o] = b.locked[o][:0]
		for _, r := range b.ord[o] {
			i := int32(r.h >> s.shift)
			if n := len(b.locked[o]); n == 0 || b.locked[o][n-1] != i {
				b.locked[o] = append(b.locked[o], i)
				s.idx[o][i].mu.Lock()
			}
		}
	}
}

// Unlock releases the batch's locks.
func (b *Batch) Unlock() {
	for _, o := range Orders {
		for _, i := range b.locked[o] {
			b.set.idx[o][i].mu.Unlock()
		}
	}
}

// LSN returns the largest LSN published in the batch's shards. The caller
// holds the batch's locks.
func (b *Batch) LSN() uint64 {
	var lsn uint64
	for _, o := range Orders {
		for _, i := range b.locked[o] {
			lsn = max(lsn, b.set.idx[o][i].lsn)
		}
	}
	return lsn
}

// Resolve decides, under the batch's locks, what the batch changes: the
// operations apply in order, so of several on one triple the last decides
// whether it ends up present. It returns how many operations changed the
// set as they applied in order (an insert of an absent triple, a delete
// of a present one).
func (b *Batch) Resolve() (changed int) {
	b.net = grow(b.net, len(b.ops))
	clear(b.net)
	refs := b.ord[SPO]
	// Large batches resolve on several goroutines, each a stretch of
	// whole runs of equal triples; their changes are joined in order.
	workers := min(runtime.GOMAXPROCS(0), len(refs)/parallelMin+1)
	cuts := make([]int, workers+1)
	for w := 1; w <= workers; w++ {
		c := len(refs) * w / workers
		for c > cuts[w-1] && c < len(refs) && refs[c].h == refs[c-1].h {
			c++ // do not split a run of one key
		}
		cuts[w] = max(c, cuts[w-1])
	}
	counts := make([]int, workers)
	parts := make([][]Op, workers)
	parallel(workers, workers, func(w int) {
		counts[w], parts[w] = b.resolve(refs[cuts[w]:cuts[w+1]])
	})
	b.changes = b.changes[:0]
	for w := range workers {
		changed += counts[w]
		b.changes = append(b.changes, parts[w]...)
	}
	return changed
}

// resolve resolves refs, a stretch of the SPO order made of whole runs of
// equal triples.
func (b *Batch) resolve(refs []ref) (changed int, changes []Op) {
	for j := 0; j < len(refs); {
		first := refs[j]
		t := &b.ops[first.i].Triple
		k := j + 1
		for k < len(refs) && refs[k].h == first.h && b.ops[refs[k].i].Triple == *t {
			k++
		}
		r := b.set.shardOf(SPO, first.h).lookup(t.S, first.h)
		was := r != nil && SPO.contains(r, SPO.val(t))
		now := was
		for _, x := range refs[j:k] {
			if ins := !b.ops[x.i].Delete; ins != now {
				now = ins
				changed++
			}
		}
		if now != was {
			last := refs[k-1].i
			b.net[last] = 1
			if !now {
				b.net[last] = -1
			}
			changes = append(changes, Op{Delete: !now, Triple: *t})
		}
		j = k
	}
	return changed, changes
}

// Changes returns the net changes Resolve found, one per triple whose
// presence changes, in SPO order: what a log record of the batch must
// hold. Applied to the state before the batch, in any order, they give
// the state after it.
func (b *Batch) Changes() []Op { return b.changes }

// parallelMin is the number of net changes from which Publish spreads
// over several goroutines.
const parallelMin = 256

// Publish applies the net changes to the three indexes and records lsn
// (0: none) in every shard the batch holds. The caller holds the locks.
// It returns the change in the number of triples.
func (b *Batch) Publish(lsn uint64) int {
	type task struct {
		o    Order
		refs []ref
	}
	var tasks []task
	for _, o := range Orders {
		refs := b.ord[o]
		for j := 0; j < len(refs); {
			sh := refs[j].h >> b.set.shift
			k := j + 1
			for k < len(refs) && refs[k].h>>b.set.shift == sh {
				k++
			}
			tasks = append(tasks, task{o, refs[j:k]})
			j = k
		}
	}
	var delta atomic.Int64
	run := func(t task) {
		if d := b.apply(t.o, t.refs); t.o == SPO {
			delta.Add(int64(d))
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(b.changes)/parallelMin+1)
	parallel(len(tasks), workers, func(i int) { run(tasks[i]) })
	if lsn > 0 {
		for _, o := range Orders {
			for _, i := range b.locked[o] {
				b.set.idx[o][i].setLSN(lsn)
			}
		}
	}
	return int(delta.Load())
}

// apply publishes the net changes among refs (operations of one shard of
// index o, grouped by key) and returns the change in the shard's triples.
func (b *Batch) apply(o Order, refs []ref) int {
	sh := b.set.shardOf(o, refs[0].h)
	delta := 0
	var changes []change
	for j := 0; j < len(refs); {
		k := o.key(&b.ops[refs[j].i].Triple)
		changes = changes[:0]
		e := j
		for ; e < len(refs) && refs[e].h == refs[j].h && o.key(&b.ops[refs[e].i].Triple) == k; e++ {
			i := refs[e].i
			if b.net[i] != 0 {
				changes = append(changes, change{v: o.val(&b.ops[i].Triple), rec: b.recs[i], del: b.net[i] < 0})
			}
		}
		if len(changes) > 0 {
			delta += sh.apply(k, refs[j].h, changes)
		}
		j = e
	}
	return delta
}
