package store

import (
	"encoding/binary"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
)

// How a batch is published.
//
// A batch is logged and queued in one short step and applied shard by
// shard afterwards, so that batches on the same shards are applied in
// parallel, while every reader that needs a batch whole still gets it:
//
//  1. plan: a stable counting sort of the operations by shard;
//  2. encode the WAL record (every operation, in slice order) outside
//     every lock, into a buffer the store reuses;
//  3. reserve: lock the shards the batch touches in ascending order,
//     append the record to the WAL (its LSN), push each shard's share of
//     the operations onto that shard's queue, unlock;
//  4. apply: lock each touched shard in turn and drain its queue,
//     applying every queued share in order (the batch's own and those of
//     batches queued before it), then unlock.
//
// A shard's queue holds shares in LSN order: every writer of a shard,
// batch or single operation, holds the shard's lock while it appends to
// the WAL. And every holder of a shard lock drains the queue before it
// looks at or changes the shard (lockShard), so a key's memory order
// stays its log order. The consistent cut (lockAll, under which
// checkpoints, View, Export, All and Range take their views) drains every
// queue with every lock held: each logged batch is then applied whole,
// and the views hold exactly the operations up to the WAL's last LSN.
// Point reads, which take no lock, may see a batch partly applied, as
// before.
//
// A batch logs every operation, also those that turn out to change
// nothing; replaying them is harmless. Only a batch that changes nothing
// at all is not logged: when no operation changes the store as read
// without locks, reserve checks again with the shards locked and drained,
// and logs nothing if that holds.

// batch is the scratch space of one InsertBatch or ApplyBatch, reused
// through Store.batches.
type batch struct {
	ops     []op
	byShard []int32      // the shard of each operation
	order   []int32      // operation indexes by shard, slice order within one
	touched []int32      // the shards the batch touches, ascending
	ends    []int32      // order[ends[k-1]:ends[k]] are the operations on touched[k]
	count   []int32      // per shard, len(s.shards): zero between uses
	payload []byte       // the WAL record
	result  *batchResult // what the batch changed, when the caller asks: nil or &res
	res     batchResult  // result's storage, reused with the batch
}

// batchResult collects what a batch's operations changed, as they are
// applied: shares of one batch are applied by whichever goroutine holds
// their shard's lock, so the count is atomic, and each changed[j] is
// written under the lock of operation j's shard, which the batch's own
// drain takes after it (so its caller reads them after applyQueued). Every
// share is drained before applyOps returns, so the batch's scratch space
// (and this with it) can be reused afterwards.
type batchResult struct {
	n       atomic.Int64
	changed []bool // nil, or one flag per operation
}

// pendingShare is the part of a logged batch that one shard has yet to
// apply.
type pendingShare struct {
	ops []op
	idx []int32 // indexes into ops, in order
	lsn uint64
	res *batchResult // nil unless the batch's caller asks what changed
}

// shardQueue holds the shares queued on one shard, guarded by the shard's
// lock.
type shardQueue struct {
	shares []pendingShare
	_      [40]byte // keep neighbouring shards' queues off one cache line
}

// getBatch returns scratch space for n operations; s.putBatch gives it
// back.
func (s *Store) getBatch(n int) *batch {
	b, _ := s.batches.Get().(*batch)
	if b == nil {
		b = &batch{count: make([]int32, len(s.shards))}
	}
	b.ops = slices.Grow(b.ops[:0], n)[:n]
	b.result = nil
	return b
}

// maxRetainedBatch is the largest batch whose scratch space is reused.
const maxRetainedBatch = 1 << 16

func (s *Store) putBatch(b *batch) {
	b.result, b.res.changed = nil, nil // keep no caller's slice
	if cap(b.ops) > maxRetainedBatch {
		return
	}
	s.batches.Put(b)
}

// plan sorts the operations of b by shard (stable: a shard's operations
// keep their slice order) and lists the shards touched.
func (s *Store) plan(b *batch) {
	n := len(b.ops)
	b.byShard = slices.Grow(b.byShard[:0], n)[:n]
	b.order = slices.Grow(b.order[:0], n)[:n]
	b.touched = b.touched[:0]
	for j := range b.ops {
		i := int32(s.shardOf(b.ops[j].key))
		b.byShard[j] = i
		if b.count[i] == 0 {
			b.touched = append(b.touched, i)
		}
		b.count[i]++
	}
	slices.Sort(b.touched)
	b.ends = slices.Grow(b.ends[:0], len(b.touched))[:len(b.touched)]
	start := int32(0)
	for k, i := range b.touched {
		c := b.count[i]
		b.count[i] = start // where shard i's operations go
		start += c
		b.ends[k] = start
	}
	for j, i := range b.byShard {
		b.order[b.count[i]] = int32(j)
		b.count[i]++
	}
	for _, i := range b.touched {
		b.count[i] = 0
	}
}

// encode writes the WAL record of b: count uint32, then every operation
// in slice order (see oplog.go).
func (b *batch) encode() {
	p := slices.Grow(b.payload[:0], 4+len(b.ops)*(1+2*cid.Size))
	p = binary.LittleEndian.AppendUint32(p, uint32(len(b.ops)))
	for _, o := range b.ops {
		p = appendBatchItem(p, o)
	}
	b.payload = p
}

// applyOps runs the operations of b as one atomic batch (see the top of
// this file) and waits until it is durable.
func (s *Store) applyOps(b *batch) error {
	if err := s.readOnly(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if len(b.ops) == 0 {
		return nil
	}
	s.plan(b)
	if s.wal != nil {
		b.encode()
	}
	lsn, err := s.reserve(b, !s.mayChange(b))
	if err != nil {
		return err
	}
	s.applyQueued(b)
	if s.wal == nil || lsn == 0 {
		return nil
	}
	if err := s.wal.WaitDurable(lsn); err != nil {
		return s.fail(err)
	}
	return nil
}

// mayChange reports whether some operation of b changes the store as it
// reads now, without locks: the first one that does ends the search.
func (s *Store) mayChange(b *batch) bool {
	for j, o := range b.ops {
		if e, ok := s.shards[b.byShard[j]].Lookup(o.key, o.key.Hash(s.seed)); changes(e, ok, o) {
			return true
		}
	}
	return false
}

// reserve logs b and queues its shares on its shards, holding their locks
// in ascending order (released by defer, so that a panic cannot leave a
// shard locked). With exact, b was found to change nothing without locks:
// reserve checks again on the drained shards and, if that holds, logs
// nothing and returns the LSN the state it saw is durable at. It returns
// the LSN to wait for.
func (s *Store) reserve(b *batch, exact bool) (uint64, error) {
	for _, i := range b.touched {
		s.shards[i].Lock()
	}
	defer func() {
		for _, i := range b.touched {
			s.shards[i].Unlock()
		}
	}()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if exact {
		var lsn uint64
		for _, i := range b.touched {
			s.drain(int(i))
			lsn = max(lsn, s.shards[i].LSN())
		}
		if !s.mayChange(b) {
			return lsn, nil
		}
	}
	var lsn uint64
	if s.wal != nil {
		l, err := s.wal.Append(opBatch, b.payload)
		if err != nil {
			return 0, s.fail(err)
		}
		lsn = l
	}
	start := int32(0)
	for k, i := range b.touched {
		q := &s.queues[i]
		q.shares = append(q.shares, pendingShare{ops: b.ops, idx: b.order[start:b.ends[k]], lsn: lsn, res: b.result})
		start = b.ends[k]
	}
	s.counts[b.touched[0]].batches.Add(1)
	return lsn, nil
}

// parallelBatch is the batch size from which applying is spread over
// several goroutines, each taking whole shards.
const parallelBatch = 256

// applyQueued drains the queues of the shards b touched, so that on
// return every share of b is applied; large batches are spread over
// several goroutines.
func (s *Store) applyQueued(b *batch) {
	workers := min(runtime.GOMAXPROCS(0), len(b.ops)/parallelBatch, len(b.touched))
	if workers <= 1 {
		s.drainEach(b.touched)
		return
	}
	var wg sync.WaitGroup
	start := 0
	for w := 1; w <= workers; w++ {
		end := len(b.touched) * w / workers
		run := b.touched[start:end]
		start = end
		if w == workers {
			s.drainEach(run)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.drainEach(run)
		}()
	}
	wg.Wait()
}

// drainEach locks each shard of shards in turn and drains its queue.
func (s *Store) drainEach(shards []int32) {
	for _, i := range shards {
		s.lockShard(int(i))
		s.shards[i].Unlock()
	}
}

// lockShard locks shard i and applies what is queued on it, so that the
// caller sees and changes the shard after every logged operation on it.
func (s *Store) lockShard(i int) {
	s.shards[i].Lock()
	s.drain(i)
}

// drain applies the shares queued on shard i in order; the caller holds
// its lock.
func (s *Store) drain(i int) {
	q := &s.queues[i]
	if len(q.shares) == 0 {
		return
	}
	sh, c := s.shards[i], &s.counts[i]
	for k := range q.shares {
		p := &q.shares[k]
		changed := 0
		for _, j := range p.idx {
			if apply(sh, p.ops[j]) {
				c.count(p.ops[j].kind)
				changed++
				if p.res != nil && p.res.changed != nil {
					p.res.changed[j] = true
				}
			}
		}
		if p.res != nil && changed > 0 {
			p.res.n.Add(int64(changed))
		}
		sh.SetLSN(p.lsn)
		q.shares[k] = pendingShare{}
	}
	q.shares = q.shares[:0]
}
