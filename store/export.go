package store

import (
	"context"
	"fmt"
	"io"

	"github.com/cidstore/cidstore/snapshot"
)

// Export writes a consistent snapshot of the live store to w in the
// snapshot format (see package snapshot): a portable stream for backup and
// migration. It takes the same O(1)-per-shard cut as Checkpoint and then
// writes without holding any lock, so writers go on meanwhile.
func (s *Store) Export(ctx context.Context, w io.Writer) (snapshot.Summary, error) {
	views, tviews, mark := s.cutAll()
	if views == nil {
		return snapshot.Summary{}, ErrClosed
	}
	parts, h := snapshotParts(views, tviews, mark.lsn)
	// Leave the writers room, as a checkpoint does.
	return snapshot.Write(ctx, w, h, parts, s.snapshotOptions(nil)...)
}

// Import loads a snapshot stream (as written by Export) into an empty
// store, validating every block and the footer; on a damaged stream
// nothing is published. In a persistent store the imported data is made
// durable with a checkpoint before Import returns; if that fails after
// the WAL recorded the import (see opImported), the store turns read-only
// and needs Repair, which drops the import. Import must not run
// concurrently with writes to the store.
func (s *Store) Import(ctx context.Context, r io.Reader) (snapshot.Summary, error) {
	if s.closed.Load() {
		return snapshot.Summary{}, ErrClosed
	}
	if err := s.readOnly(); err != nil {
		return snapshot.Summary{}, err
	}
	if s.Len() != 0 || s.TripleCount() != 0 {
		return snapshot.Summary{}, ErrNotEmpty
	}
	loaders, tl := s.newLoaders(), s.newTripleLoad()
	sinks := s.newEntrySinks(loaders)
	_, sum, err := snapshot.ReadEntries(ctx, r, s.entries(sinks, tl, "<stream>"))
	sinks.flush()
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
	if err := s.loadTriples(tl, lsn); err != nil {
		return sum, fmt.Errorf("%w: %w", ErrNotEmpty, err)
	}
	if s.wal == nil {
		return sum, nil
	}
	// The imported pairs and triples are in no WAL record: only a
	// snapshot makes them durable. Once the WAL holds records, an older
	// snapshot (or none) and the WAL after it could pass for the whole
	// store should that snapshot be lost; an imported record before it
	// tells recovery that they cannot (see opImported).
	marked := lsn > 0
	if marked {
		l, err := s.wal.Append(opImported, encodeImported(uint64(s.Pairs()), uint64(s.Len())))
		if err == nil {
			err = s.wal.WaitDurable(l)
		}
		if err != nil {
			return sum, s.fail(err)
		}
	}
	if err := s.checkpoint(ctx, nil, true); err != nil {
		if marked {
			// The WAL now says that a snapshot holds the import: nothing
			// may be acknowledged on top of it until the store has been
			// repaired.
			return sum, s.fail(fmt.Errorf("import not durable: %w", err))
		}
		return sum, err
	}
	return sum, nil
}
