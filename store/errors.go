package store

import (
	"errors"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

var (
	// ErrClosed is returned by every write and by Close after the store
	// has been closed.
	ErrClosed = errors.New("cidstore: store is closed")
	// ErrInvalidOptions is returned (wrapped) by Open for bad Options
	// (the initial Config included), and by UpdateConfig and
	// Config.Validate for a bad Config. Where a lower package found the
	// problem, the error also matches that package's ErrInvalidOptions
	// (wal.ErrInvalidOptions, shard.ErrInvalidOptions).
	ErrInvalidOptions = errors.New("cidstore: invalid options")
	// ErrInvalidCID is returned (wrapped) when a write uses the reserved
	// all-zero CID as key or value. It is the same value as
	// cid.ErrInvalidCID.
	ErrInvalidCID = cid.ErrInvalidCID
	// ErrBatchTooLarge is returned by InsertBatch and ApplyBatch for more
	// than MaxBatch pairs or operations.
	ErrBatchTooLarge = errors.New("cidstore: batch too large")
	// ErrInvalidOp is returned (wrapped) by ApplyBatch for an operation
	// of unknown kind.
	ErrInvalidOp = errors.New("cidstore: invalid operation")
	// ErrReadOnly is returned (wrapped, together with the cause) by every
	// write to a store opened with Options.ReadOnly, and by every write
	// after the write-ahead log failed to write or fsync. The store
	// stays readable; nothing written after the failure is acknowledged.
	// The write that failed was already published, so readers keep seeing
	// it until the store is closed; after a reopen only what was durable
	// remains. Reopen the store to recover and write again.
	ErrReadOnly = errors.New("cidstore: store is read-only after a write failure")
	// ErrLocked is returned (wrapped) by Open when another Store, in this
	// or another process, has the directory open. It is the same value as
	// vfs.ErrLocked.
	ErrLocked = vfs.ErrLocked
	// ErrCorrupt is matched (errors.Is) by every error that reports
	// damage: Open when the directory holds damage that is not a torn
	// final write, Import for a damaged stream, VerifyDir, Repair and the
	// scrub worker. The error names the file and offset. Damage found by
	// the WAL also matches wal.ErrCorrupt, damage in a snapshot file or
	// stream also matches snapshot.ErrCorrupt; the store wraps them once,
	// without adding to their text. Options.Repair, or the cidstore repair
	// command, repairs the directory instead (see Repair).
	ErrCorrupt = errors.New("cidstore: corrupt store")
	// ErrLSNExhausted is returned (wrapped) by a write once the
	// write-ahead log has used its last LSN (wal.MaxLSN; only a crafted
	// log gets there), together with ErrReadOnly, and by Open for a log
	// whose LSNs go beyond it. No write is ever logged under an LSN that
	// wrapped around. It is the same value as wal.ErrLSNExhausted.
	ErrLSNExhausted = wal.ErrLSNExhausted
	// ErrNotStore is returned (wrapped) by Repair, and by Open with
	// Options.ReadOnly, for a path that is not a store directory.
	ErrNotStore = errors.New("cidstore: not a store directory")
	// ErrInMemory is returned by operations that need a directory, such
	// as Checkpoint, on an in-memory store.
	ErrInMemory = errors.New("cidstore: in-memory store")
	// ErrNotEmpty is returned by Import into a store that holds data.
	ErrNotEmpty = errors.New("cidstore: store is not empty")
)

// corruptError makes damage reported by the WAL or the snapshot layer
// match ErrCorrupt too, keeping its text.
type corruptError struct{ err error }

func (e *corruptError) Error() string        { return e.err.Error() }
func (e *corruptError) Unwrap() error        { return e.err }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// asCorrupt returns err so that it matches ErrCorrupt when it reports
// damage (wal.ErrCorrupt or snapshot.ErrCorrupt), and as it is otherwise.
func asCorrupt(err error) error {
	if err == nil || errors.Is(err, ErrCorrupt) {
		return err
	}
	if errors.Is(err, wal.ErrCorrupt) || errors.Is(err, snapshot.ErrCorrupt) {
		return &corruptError{err}
	}
	return err
}
