package store

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/cidstore/cidstore/cid"
)

// Pair is one (key, value) association.
type Pair struct {
	Key, Value cid.CID
}

// MaxBatch is the largest number of pairs InsertBatch, or operations
// ApplyBatch, accepts: a batch is one WAL record and must fit its 64 MiB
// payload limit.
const MaxBatch = 1_000_000

// InsertBatch inserts many pairs as one atomic unit:
//
//   - validation is all-or-nothing: if any pair holds the zero CID, or
//     there are more than MaxBatch pairs, nothing is inserted;
//   - in a persistent store the batch is one WAL record, so after a crash
//     it is present entirely or not at all;
//   - the batch is applied while holding the locks of every shard it
//     touches, so ordered iteration (All, Range) sees either none or all
//     of it;
//   - point reads (Get, Contains, Count) of different keys may observe the
//     batch partly applied while it is being published; each key's value
//     set is always whole.
//
// Pairs already present are skipped; duplicates within the batch are fine.
func (s *Store) InsertBatch(pairs []Pair) error {
	if len(pairs) > MaxBatch {
		return fmt.Errorf("%w: %d pairs, at most %d", ErrBatchTooLarge, len(pairs), MaxBatch)
	}
	for j, p := range pairs {
		if err := checkPair(p.Key, p.Value); err != nil {
			return fmt.Errorf("pair %d: %w", j, err)
		}
	}
	ops := make([]op, len(pairs))
	for j, p := range pairs {
		ops[j] = op{kind: opAdd, key: p.Key, val: p.Value}
	}
	return s.applyOps(ops, false)
}

// PairOpKind says what one PairOp of a batch does.
type PairOpKind uint8

// The kinds of PairOp.
const (
	OpInsert    PairOpKind = iota + 1 // add Value to the values of Key
	OpDelete                          // remove Value from the values of Key
	OpDeleteKey                       // remove Key with all its values; Value is unused
)

// String returns the kind's name.
func (k PairOpKind) String() string {
	switch k {
	case OpInsert:
		return "insert"
	case OpDelete:
		return "delete"
	case OpDeleteKey:
		return "delete-key"
	}
	return fmt.Sprintf("PairOpKind(%d)", uint8(k))
}

// PairOp is one change of an atomic pair batch (see ApplyBatch).
type PairOp struct {
	Kind       PairOpKind
	Key, Value cid.CID // Value is unused for OpDeleteKey
}

// logOp is o as a WAL operation, or an error for an unknown kind or the
// reserved zero CID.
func (o PairOp) logOp() (op, error) {
	switch o.Kind {
	case OpInsert, OpDelete:
		if err := checkPair(o.Key, o.Value); err != nil {
			return op{}, err
		}
		kind := opAdd
		if o.Kind == OpDelete {
			kind = opRemove
		}
		return op{kind: kind, key: o.Key, val: o.Value}, nil
	case OpDeleteKey:
		if o.Key.IsZero() {
			return op{}, fmt.Errorf("%w: zero CID as key", ErrInvalidCID)
		}
		return op{kind: opRemoveKey, key: o.Key}, nil
	}
	return op{}, fmt.Errorf("%w: unknown PairOpKind %d", ErrInvalidOp, uint8(o.Kind))
}

// ApplyBatch applies a mixed batch of inserts, deletes and key deletions
// as one atomic unit, in order:
//
//   - validation is all-or-nothing: an unknown kind (ErrInvalidOp), the
//     zero CID (ErrInvalidCID) or more than MaxBatch operations
//     (ErrBatchTooLarge) rejects the whole batch and changes nothing;
//   - the operations take effect in slice order, so an insert after a
//     DeleteKey of the same key survives it;
//   - in a persistent store the batch is one WAL record, so after a crash
//     it is present entirely or not at all, and ApplyBatch returns when
//     that record is durable as Options.Sync says;
//   - like InsertBatch, it holds the locks of every shard it touches while
//     it publishes, so All and Range see all of it or none; point reads of
//     different keys may see it partly applied.
//
// Operations that change nothing (inserting a present pair, deleting an
// absent one) succeed and are not logged.
func (s *Store) ApplyBatch(ops []PairOp) error {
	if len(ops) > MaxBatch {
		return fmt.Errorf("%w: %d operations, at most %d", ErrBatchTooLarge, len(ops), MaxBatch)
	}
	logged := make([]op, len(ops))
	for j, o := range ops {
		lo, err := o.logOp()
		if err != nil {
			return fmt.Errorf("operation %d: %w", j, err)
		}
		logged[j] = lo
	}
	return s.applyOps(logged, true)
}

// shardPlan is the order in which a batch visits its items: by shard, so
// that it locks shards in ascending order, the order Close and the
// iterators use too, which rules out deadlock.
type shardPlan struct {
	order   []int32 // item indexes in visiting order
	byShard []int32 // the shard of each item, by item index
	locked  []int32 // the shards the batch touches, ascending
}

// applyOps runs ops as one atomic batch: it plans the visiting order (with
// byKey, the operations of one key also sit next to each other in slice
// order), locks the shards, logs and publishes the operations, unlocks,
// and waits until the batch is durable.
func (s *Store) applyOps(ops []op, byKey bool) error {
	if err := s.readOnly(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	if len(ops) == 0 {
		return nil
	}
	n := len(ops)
	p := shardPlan{order: make([]int32, n), byShard: make([]int32, n)}
	for j, o := range ops {
		p.byShard[j] = int32(s.shardOf(o.key))
		p.order[j] = int32(j)
	}
	slices.SortFunc(p.order, func(a, b int32) int {
		if c := int(p.byShard[a]) - int(p.byShard[b]); c != 0 || !byKey {
			return c
		}
		if c := cid.Compare(ops[a].key, ops[b].key); c != 0 {
			return c
		}
		return int(a - b)
	})
	p.locked = make([]int32, 0, min(n, len(s.shards)))
	for _, j := range p.order {
		if i := p.byShard[j]; len(p.locked) == 0 || p.locked[len(p.locked)-1] != i {
			p.locked = append(p.locked, i)
		}
	}
	lsn, err := s.publishOps(ops, p)
	if err != nil || s.wal == nil {
		return err
	}
	if err := s.wal.WaitDurable(lsn); err != nil {
		return s.fail(err)
	}
	return nil
}

// publishOps locks the shards of p in order (releasing them by defer, so
// that a panic cannot leave a shard locked), logs ops as one WAL record and
// publishes them, visited in p.order. It returns the LSN to wait for.
func (s *Store) publishOps(ops []op, p shardPlan) (uint64, error) {
	for _, i := range p.locked {
		s.shards[i].Lock()
	}
	defer func() {
		for _, i := range p.locked {
			s.shards[i].Unlock()
		}
	}()
	order, byShard, locked := p.order, p.byShard, p.locked
	if s.closed.Load() {
		return 0, ErrClosed
	}
	var lsn uint64
	if s.wal != nil {
		for _, i := range locked {
			lsn = max(lsn, s.shards[i].LSN())
		}
		payload := make([]byte, 4, 4+len(ops)*(1+2*cid.Size))
		n := uint32(0)
		// An operation is logged if it changes the shard as it stands.
		// Once one operation on a key is logged, the shard no longer shows
		// the state the next ones on that key meet, so they are logged
		// too: replaying a no-op is harmless.
		dirty := false
		for k, j := range order {
			o := ops[j]
			if k > 0 && ops[order[k-1]].key != o.key {
				dirty = false
			}
			if dirty || changes(s.shards[byShard[j]], o) {
				payload = appendBatchItem(payload, o)
				n++
				dirty = true
			}
		}
		if n == 0 {
			return lsn, nil
		}
		binary.LittleEndian.PutUint32(payload, n)
		l, err := s.wal.Append(opBatch, payload)
		if err != nil {
			return 0, s.fail(err)
		}
		lsn = l
		for _, i := range locked {
			s.shards[i].SetLSN(lsn)
		}
	}
	s.publishRuns(order, byShard, func(run []int32) {
		for _, j := range run {
			i := byShard[j]
			if apply(s.shards[i], ops[j]) {
				s.counts[i].count(ops[j].kind)
			}
		}
	})
	s.counts[locked[0]].batches.Add(1)
	return lsn, nil
}

// parallelBatch is the batch size from which publishing is spread over
// several goroutines (each taking whole shards, whose locks the batch
// already holds).
const parallelBatch = 256

// publishRuns calls publish for runs of order (visited in shard order)
// that never split a shard, spreading large batches over several
// goroutines; the caller holds the locks of every shard in order.
func (s *Store) publishRuns(order, byShard []int32, publish func(run []int32)) {
	workers := min(runtime.GOMAXPROCS(0), len(order)/parallelBatch)
	if workers <= 1 {
		publish(order)
		return
	}
	// Cut order into runs of about equal size at shard boundaries, so no
	// shard is touched by two goroutines.
	var wg sync.WaitGroup
	start := 0
	for w := 1; w <= workers && start < len(order); w++ {
		end := len(order) * w / workers
		for end < len(order) && end > 0 && byShard[order[end]] == byShard[order[end-1]] {
			end++
		}
		if end <= start {
			continue
		}
		run := order[start:end]
		start = end
		if start == len(order) {
			publish(run)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			publish(run)
		}()
	}
	wg.Wait()
}
