package server

// TEMPORARY: this file bridges the store's triple methods (store.Triple,
// InsertTriples, DeleteTriples, Query, TripleCount), which are being built
// elsewhere, and goes away when they land: until then NewStoreBackend adds
// an in-memory, non-durable triple set to a *store.Store. When they land,
// replace this file by "type Triple = store.Triple" in backend.go and pass
// the *store.Store itself as the Backend.

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"sync"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Triple is one (subject, predicate, object) statement.
type Triple struct{ S, P, O cid.CID }

// NewStoreBackend returns s as a Backend. Until the store has triples of
// its own, they are kept in memory beside it and are not durable.
func NewStoreBackend(s *store.Store) Backend {
	return &pendingBackend{Store: s, triples: map[Triple]struct{}{}}
}

type pendingBackend struct {
	*store.Store
	mu      sync.RWMutex
	triples map[Triple]struct{}
}

func checkTriples(ts []Triple) error {
	if len(ts) > store.MaxBatch {
		return fmt.Errorf("%w: %d triples, at most %d", store.ErrBatchTooLarge, len(ts), store.MaxBatch)
	}
	for i, t := range ts {
		if t.S.IsZero() || t.P.IsZero() || t.O.IsZero() {
			return fmt.Errorf("triple %d: %w: zero CID", i, store.ErrInvalidCID)
		}
	}
	return nil
}

func (b *pendingBackend) InsertTriples(ts []Triple) (int, error) {
	if err := checkTriples(ts); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.triples)
	for _, t := range ts {
		b.triples[t] = struct{}{}
	}
	return len(b.triples) - n, nil
}

func (b *pendingBackend) DeleteTriples(ts []Triple) (int, error) {
	if err := checkTriples(ts); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.triples)
	for _, t := range ts {
		delete(b.triples, t)
	}
	return n - len(b.triples), nil
}

func (b *pendingBackend) Query(s, p, o cid.CID) iter.Seq[Triple] {
	match := func(want, got cid.CID) bool { return want.IsZero() || want == got }
	b.mu.RLock()
	var out []Triple
	for t := range b.triples {
		if match(s, t.S) && match(p, t.P) && match(o, t.O) {
			out = append(out, t)
		}
	}
	b.mu.RUnlock()
	slices.SortFunc(out, func(x, y Triple) int {
		return cmp.Or(cid.Compare(x.S, y.S), cid.Compare(x.P, y.P), cid.Compare(x.O, y.O))
	})
	return slices.Values(out)
}

func (b *pendingBackend) TripleCount() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.triples)
}
