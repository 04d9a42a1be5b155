package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cidstore/cidstore/snapshot"
)

// Export writes a consistent snapshot of the live store to w in the
// snapshot format (see package snapshot): a portable stream for backup and
// migration. It takes the same O(1)-per-shard cut as Checkpoint and then
// writes without holding any lock, so writers go on meanwhile.
func (s *Store) Export(ctx context.Context, w io.Writer) (snapshot.Summary, error) {
	views, mark := s.cut()
	if views == nil {
		return snapshot.Summary{}, ErrClosed
	}
	parts := viewParts(views)
	// Leave the writers room, as a checkpoint does.
	return snapshot.Write(ctx, w, snapshot.Header{LSN: mark.lsn, Parts: len(views)}, parts, s.encoderOptions()...)
}

// ErrNotEmpty is returned by Import into a store that holds data.
var ErrNotEmpty = errors.New("cidstore: store is not empty")

// Import loads a snapshot stream (as written by Export) into an empty
// store, validating every block and the footer; on any error nothing is
// published. In a persistent store the imported data is made durable with
// a checkpoint before Import returns. Import must not run concurrently
// with writes to the store.
func (s *Store) Import(ctx context.Context, r io.Reader) (snapshot.Summary, error) {
	if s.closed.Load() {
		return snapshot.Summary{}, ErrClosed
	}
	if err := s.readOnly(); err != nil {
		return snapshot.Summary{}, err
	}
	if s.Len() != 0 {
		return snapshot.Summary{}, ErrNotEmpty
	}
	loaders := s.newLoaders()
	_, sum, err := snapshot.Read(ctx, r, s.loadInto(loaders, "<stream>"))
	if err != nil {
		return sum, asCorrupt(err)
	}
	var lsn uint64
	if s.wal != nil {
		lsn = s.wal.LastLSN()
	}
	if err := s.loadShards(loaders, lsn); err != nil {
		return sum, fmt.Errorf("%w: %w", ErrNotEmpty, err)
	}
	if s.wal != nil {
		// The imported pairs are in no WAL record: only a snapshot makes
		// them durable.
		if err := s.checkpoint(ctx, nil, true); err != nil {
			return sum, err
		}
	}
	return sum, nil
}
