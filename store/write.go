package store

import (
	"errors"
	"fmt"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/wal"
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
// already present is a no-op that succeeds (in a persistent store it
// still waits until that pair is durable). The zero CID is rejected with
// ErrInvalidCID. In a persistent store Insert returns when the write is
// durable as Config.Sync says; readers may see it a moment earlier.
func (s *Store) Insert(k, v cid.CID) error {
	if err := checkPair(k, v); err != nil {
		return err
	}
	return s.write(op{kind: opAdd, key: k, val: v})
}

// Delete removes v from the values of k. Deleting an absent pair is a
// no-op that succeeds. When the last value goes, the key goes too. The
// zero CID is rejected with ErrInvalidCID, as in Insert.
func (s *Store) Delete(k, v cid.CID) error {
	if err := checkPair(k, v); err != nil {
		return err
	}
	return s.write(op{kind: opRemove, key: k, val: v})
}

// DeleteKey removes k with all its values. Deleting an absent key is a
// no-op that succeeds. The zero CID is rejected with ErrInvalidCID.
func (s *Store) DeleteKey(k cid.CID) error {
	if k.IsZero() {
		return fmt.Errorf("%w: zero CID as key", ErrInvalidCID)
	}
	return s.write(op{kind: opRemoveKey, key: k})
}

// write performs a single-key operation following the write path: lock
// the shard, log the operation (getting its LSN), publish it, unlock, then
// wait for durability outside every lock.
func (s *Store) write(o op) error {
	if err := s.readOnly(); err != nil {
		return err
	}
	lsn, err := s.writeLocked(o)
	if err != nil || s.wal == nil {
		return err
	}
	if err := s.wal.WaitDurable(lsn); err != nil {
		return s.fail(err)
	}
	return nil
}

// writeLocked logs and publishes o under its shard's lock, released by
// defer, and returns the LSN to wait for. The record is appended before
// the change is published: a reader that sees the change and then writes
// gets a later LSN, so its write is never durable without this one, and a
// failed append leaves nothing in memory that the log does not hold.
func (s *Store) writeLocked(o op) (uint64, error) {
	h := o.key.Hash(s.seed) // picks the shard and keys its map (see lookup)
	i := int(h >> s.shift)
	sh := s.shards[i]
	s.lockShard(i)
	defer sh.Unlock()
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if s.wal == nil {
		if apply(sh, o) {
			s.counts[i].count(o.kind)
		}
		return 0, nil
	}
	if e, ok := sh.Lookup(o.key, h); !changes(e, ok, o) {
		// A no-op still waits: the state it observed may come from a
		// record that is not durable yet, and the shard's last LSN
		// covers it.
		return sh.LSN(), nil
	}
	var buf [2 * cid.Size]byte
	payload := encodePair(&buf, o.key, o.val)
	if o.kind == opRemoveKey {
		payload = payload[:cid.Size]
	}
	l, err := s.wal.Append(o.kind, payload)
	if err != nil {
		return 0, s.fail(err)
	}
	apply(sh, o)
	sh.SetLSN(l)
	s.counts[i].count(o.kind)
	return l, nil
}

// changes reports whether o would change a shard whose lookup of o.key
// returned e, ok (ok false: the key is absent).
func changes(e shard.Entry, ok bool, o op) bool {
	switch o.kind {
	case opAdd:
		return !ok || !e.Contains(o.val)
	case opRemove:
		return ok && e.Contains(o.val)
	default:
		return ok && e.Len() > 0
	}
}

// readOnly returns the sticky failure, if the store has one.
func (s *Store) readOnly() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail turns a WAL error into the store's sticky read-only error.
func (s *Store) fail(err error) error {
	if errors.Is(err, wal.ErrClosed) {
		return ErrClosed
	}
	ro := fmt.Errorf("%w: %w", ErrReadOnly, err)
	if s.failed.CompareAndSwap(nil, &ro) {
		s.opts.Logger.Error("cidstore: write-ahead log failed; store is now read-only", "dir", s.dir, "err", err)
	}
	return *s.failed.Load()
}
