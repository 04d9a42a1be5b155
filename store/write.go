package store

import (
	"fmt"
	"slices"

	"github.com/cidstore/cidstore/cid"
)

func checkPair(k, v cid.CID) error {
	if k.IsZero() {
		return fmt.Errorf("%w: zero CID as key", ErrInvalidCID)
	}
	if v.IsZero() {
		return fmt.Errorf("%w: zero CID as value", ErrInvalidCID)
	}
	return nil
}

// Insert adds v to the set of values of k. Inserting a pair that is
// already present is a no-op that succeeds. The zero CID is rejected with
// ErrInvalidCID.
func (s *Store) Insert(k, v cid.CID) error {
	if err := checkPair(k, v); err != nil {
		return err
	}
	i := s.shardOf(k)
	sh := s.shards[i]
	sh.Lock()
	if s.closed.Load() {
		sh.Unlock()
		return ErrClosed
	}
	if sh.Add(k, v) {
		s.counts[i].inserts.Add(1)
	}
	sh.Unlock()
	return nil
}

// Delete removes v from the values of k. Deleting an absent pair is a
// no-op that succeeds. When the last value goes, the key goes too.
func (s *Store) Delete(k, v cid.CID) error {
	i := s.shardOf(k)
	sh := s.shards[i]
	sh.Lock()
	if s.closed.Load() {
		sh.Unlock()
		return ErrClosed
	}
	if sh.Remove(k, v) {
		s.counts[i].deletes.Add(1)
	}
	sh.Unlock()
	return nil
}

// DeleteKey removes k with all its values. Deleting an absent key is a
// no-op that succeeds.
func (s *Store) DeleteKey(k cid.CID) error {
	i := s.shardOf(k)
	sh := s.shards[i]
	sh.Lock()
	if s.closed.Load() {
		sh.Unlock()
		return ErrClosed
	}
	if sh.RemoveKey(k) > 0 {
		s.counts[i].deleteKeys.Add(1)
	}
	sh.Unlock()
	return nil
}

// InsertBatch inserts many pairs as one atomic unit:
//
//   - validation is all-or-nothing: if any pair holds the zero CID, nothing
//     is inserted;
//   - the batch is applied while holding the locks of every shard it
//     touches, so ordered iteration (All, Range) and snapshots see either
//     none or all of it;
//   - point reads (Get, Contains, Count) of different keys may observe the
//     batch partly applied while it is being published; each key's value
//     set is always whole.
//
// Pairs already present are skipped; duplicates within the batch are fine.
func (s *Store) InsertBatch(pairs []Pair) error {
	for j, p := range pairs {
		if err := checkPair(p.Key, p.Value); err != nil {
			return fmt.Errorf("pair %d: %w", j, err)
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	// Group pair indexes by shard, then lock shards in ascending order:
	// the same order Close and View use, so there is no deadlock.
	byShard := make([]int32, len(pairs))
	for j, p := range pairs {
		byShard[j] = int32(s.shardOf(p.Key))
	}
	order := make([]int32, len(pairs))
	for j := range order {
		order[j] = int32(j)
	}
	slices.SortFunc(order, func(a, b int32) int { return int(byShard[a]) - int(byShard[b]) })

	locked := make([]int32, 0, min(len(pairs), len(s.shards)))
	for _, j := range order {
		if i := byShard[j]; len(locked) == 0 || locked[len(locked)-1] != i {
			s.shards[i].Lock()
			locked = append(locked, i)
		}
	}
	defer func() {
		for _, i := range locked {
			s.shards[i].Unlock()
		}
	}()
	if s.closed.Load() {
		return ErrClosed
	}
	for _, j := range order {
		i := byShard[j]
		if s.shards[i].Add(pairs[j].Key, pairs[j].Value) {
			s.counts[i].inserts.Add(1)
		}
	}
	s.counts[locked[0]].batches.Add(1)
	return nil
}
