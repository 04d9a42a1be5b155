package store

import (
	"fmt"

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
//   - ordered iteration (All, Range), Export and checkpoints see either
//     none or all of it (see applyOps), while batches on the same shards
//     are published in parallel;
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
	b := s.getBatch(len(pairs))
	defer s.putBatch(b)
	for j, p := range pairs {
		b.ops[j] = op{kind: opAdd, key: p.Key, val: p.Value}
	}
	return s.applyOps(b)
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
//   - like InsertBatch, it is published whole or not at all for All,
//     Range, Export and checkpoints; point reads of different keys may see
//     it partly applied.
//
// Operations that change nothing (inserting a present pair, deleting an
// absent one) succeed; a batch of nothing but such operations is not
// logged.
func (s *Store) ApplyBatch(ops []PairOp) error {
	_, err := s.ApplyPairs(ops, nil)
	return err
}

// ApplyPairs is ApplyBatch that also says what the batch changed: n is
// the number of operations that changed the store (an insert of an absent
// pair, a delete of a present one, a DeleteKey of a present key), and when
// changed is not nil, which must then have len(ops) elements, changed[i]
// tells whether ops[i] did. Each operation is judged against the state
// the operations before it in the batch left, so inserting a pair twice
// in one batch changes the store once. On error n is 0. A rejected batch
// changed nothing; when the WAL fails (ErrReadOnly) the batch may already
// be applied in memory, as changed then says, and may not survive a crash.
func (s *Store) ApplyPairs(ops []PairOp, changed []bool) (n int, err error) {
	if changed != nil && len(changed) != len(ops) {
		return 0, fmt.Errorf("%w: %d operations but %d change flags", ErrInvalidOp, len(ops), len(changed))
	}
	if len(ops) > MaxBatch {
		return 0, fmt.Errorf("%w: %d operations, at most %d", ErrBatchTooLarge, len(ops), MaxBatch)
	}
	b := s.getBatch(len(ops))
	defer s.putBatch(b)
	for j, o := range ops {
		lo, err := o.logOp()
		if err != nil {
			return 0, fmt.Errorf("operation %d: %w", j, err)
		}
		b.ops[j] = lo
	}
	clear(changed)
	b.res.n.Store(0)
	b.res.changed = changed
	b.result = &b.res
	if err := s.applyOps(b); err != nil {
		return 0, err
	}
	return int(b.result.n.Load()), nil
}
