package store

import (
	"fmt"
	"iter"
	"sync"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/triples"
)

// Triple is one (subject, predicate, object) statement:
// struct{ S, P, O cid.CID }. None of its components may be the zero CID.
type Triple = triples.Triple

// TripleOp is one change of an atomic triple batch:
// struct{ Delete bool; Triple }, an insert unless Delete is set.
type TripleOp = triples.Op

// tripleInline is how many times Config.InlineValues values a triple
// index keeps in a sorted slice before it switches to a B-tree. A query
// reads a key's set far more often than a write copies it, and a sorted
// slice of 128 values (8 KiB) answers SP?, ?PO and S?O with a binary
// search and a sequential scan, about twice as fast as a B-tree of the
// same values.
const tripleInline = 4

// newTriples makes the store's empty triple indexes.
func newTriples(shards, inlineValues int, seed uint64) (*triples.Set, error) {
	inline := min(tripleInline*inlineValues, triples.MaxInlineMax)
	ts, err := triples.New(triples.Options{Shards: shards, Seed: seed, InlineMax: inline})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return ts, nil
}

// InsertTriple adds t. Inserting a present triple is a no-op that
// succeeds (in a persistent store it still waits until the triple is
// durable). A zero CID in any component is rejected with ErrInvalidCID.
// In a persistent store InsertTriple returns when the write is durable as
// the sync policy says; readers may see it a moment earlier.
func (s *Store) InsertTriple(t Triple) error {
	_, err := s.ApplyTriples([]TripleOp{{Triple: t}})
	return err
}

// DeleteTriple removes t. Deleting an absent triple is a no-op that
// succeeds; a zero CID is rejected with ErrInvalidCID, as in InsertTriple.
func (s *Store) DeleteTriple(t Triple) error {
	_, err := s.ApplyTriples([]TripleOp{{Delete: true, Triple: t}})
	return err
}

// InsertTriples inserts ts as one atomic batch (see ApplyTriples) and
// returns how many of them were not present before. Duplicates within ts
// count once.
func (s *Store) InsertTriples(ts []Triple) (added int, err error) {
	return s.applyAll(ts, false)
}

// DeleteTriples deletes ts as one atomic batch (see ApplyTriples) and
// returns how many of them were present.
func (s *Store) DeleteTriples(ts []Triple) (removed int, err error) {
	return s.applyAll(ts, true)
}

func (s *Store) applyAll(ts []Triple, del bool) (int, error) {
	if len(ts) > MaxTripleBatch {
		return 0, fmt.Errorf("%w: %d triples, at most %d", ErrBatchTooLarge, len(ts), MaxTripleBatch)
	}
	p, _ := opsPool.Get().(*[]TripleOp)
	if p == nil {
		p = new([]TripleOp)
	}
	ops := (*p)[:0]
	for _, t := range ts {
		ops = append(ops, TripleOp{Delete: del, Triple: t})
	}
	n, err := s.ApplyTriples(ops)
	if cap(ops) <= maxPooledOps {
		*p = ops
		opsPool.Put(p)
	}
	return n, err
}

// opsPool recycles the operation slices of InsertTriples and
// DeleteTriples, and encodePool WAL payloads, so that a stream of batches
// makes little garbage: at a million triples the collector's work grows
// with every byte allocated.
var opsPool, encodePool sync.Pool

// maxPooledOps bounds the slices the pools keep.
const maxPooledOps = 1 << 16

// ApplyTriples applies ops, inserts and deletes, in order, as one atomic
// unit, and returns how many of them changed the store as they applied
// (an insert of an absent triple or a delete of a present one):
//
//   - validation is all-or-nothing: a zero CID anywhere (ErrInvalidCID) or
//     more than MaxTripleBatch operations (ErrBatchTooLarge) and nothing
//     is applied;
//   - in a persistent store the batch's net changes are one WAL record, so
//     after a crash an acknowledged batch is present entirely and an
//     unacknowledged one entirely or not at all;
//   - the batch is published in all three indexes while holding the locks
//     of every index shard it touches, so Query(Zero, Zero, Zero),
//     Export and checkpoints see all of it or none of it; lock-free
//     pattern reads of different keys may see it partly applied for a
//     moment, each key's triples always whole.
func (s *Store) ApplyTriples(ops []TripleOp) (changed int, err error) {
	if len(ops) > MaxTripleBatch {
		return 0, fmt.Errorf("%w: %d operations, at most %d", ErrBatchTooLarge, len(ops), MaxTripleBatch)
	}
	for i := range ops {
		if err := checkTriple(ops[i].Triple); err != nil {
			return 0, fmt.Errorf("triple %d: %w", i, err)
		}
	}
	if err := s.readOnly(); err != nil {
		return 0, err
	}
	if len(ops) == 0 {
		return 0, nil
	}
	b := s.triples.Prepare(ops)
	b.Lock()
	changed, lsn, err := s.applyTriplesLocked(b)
	b.Unlock()
	b.Release()
	if err != nil || s.wal == nil {
		return changed, err
	}
	if err := s.wal.WaitDurable(lsn); err != nil {
		return 0, s.fail(err)
	}
	return changed, nil
}

// applyTriplesLocked resolves, logs and publishes a prepared batch whose
// locks the caller holds. It returns the LSN to wait for.
func (s *Store) applyTriplesLocked(b *triples.Batch) (changed int, lsn uint64, err error) {
	if s.closed.Load() {
		return 0, 0, ErrClosed
	}
	changed = b.Resolve()
	changes := b.Changes()
	if s.wal != nil {
		// A no-op still waits: what it observed may come from a record
		// that is not durable yet.
		lsn = b.LSN()
		if len(changes) > 0 {
			buf, _ := encodePool.Get().(*[]byte)
			if buf == nil {
				buf = new([]byte)
			}
			typ, payload := encodeTripleOps((*buf)[:0], changes)
			lsn, err = s.wal.Append(typ, payload) // copies payload
			if cap(payload) <= maxPooledOps*(1+tripleSize) {
				*buf = payload
				encodePool.Put(buf)
			}
			if err != nil {
				return 0, 0, s.fail(err)
			}
		}
	}
	if len(changes) == 0 {
		return changed, lsn, nil
	}
	b.Publish(lsn)
	s.tcounts.count(changes)
	return changed, lsn, nil
}

// HasTriple reports whether t is stored. It never takes a lock: one map
// lookup and a search in one immutable value set.
func (s *Store) HasTriple(t Triple) bool {
	if s.closed.Load() {
		return false
	}
	return s.triples.Has(t)
}

// Query returns the triples that match (sub, pred, obj), where cid.Zero
// is a wildcard. All eight patterns are answered from an index at a cost
// of O(log n + answer), and each yields its triples in a fixed order:
//
//	pattern  index  order
//	S P O    SPO    the triple, if present
//	S P ?    SPO    by O
//	S ? ?    SPO    by P, then O
//	? P O    POS    by S
//	? P ?    POS    by O, then S
//	S ? O    OSP    by P
//	? ? O    OSP    by S, then P
//	? ? ?    SPO    by S, then P, then O
//
// Patterns with a bound component take no lock: they walk one immutable
// value set, so a write published meanwhile is not seen. ??? walks a
// consistent point-in-time view of the whole SPO index (an O(1) lock of
// each shard to take it), in which a batch is whole or absent.
func (s *Store) Query(sub, pred, obj cid.CID) iter.Seq[Triple] {
	if s.closed.Load() {
		return func(func(Triple) bool) {}
	}
	return s.triples.Query(sub, pred, obj)
}

// CountTriples returns how many triples match (sub, pred, obj), as Query
// would yield them; O(1) when exactly one component is bound.
func (s *Store) CountTriples(sub, pred, obj cid.CID) int {
	if s.closed.Load() {
		return 0
	}
	return s.triples.CountMatches(sub, pred, obj)
}

// TripleCount returns the number of triples. Under concurrent writes it
// is a moment's approximation: shards are summed one after another.
func (s *Store) TripleCount() int { return s.triples.Len() }
