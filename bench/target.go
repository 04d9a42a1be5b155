package bench

import (
	"slices"
	"sync"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
	"github.com/puzpuzpuz/xsync/v3"
)

// Pair is one (key, value) pair.
type Pair = store.Pair

// Target is a store under test: a multi-valued map from CIDs to sets of
// CIDs, safe for concurrent use.
type Target interface {
	// Name identifies the target in reports ("CIDStore", "Pebble", ...).
	Name() string
	// AppendValues appends the values of k to dst (in any order).
	AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error)
	// Insert adds v to the set of k; inserting a present pair is a no-op.
	Insert(k, v cid.CID) error
	// InsertBatch inserts every pair.
	InsertBatch(pairs []Pair) error
	// Delete removes v from the set of k; deleting an absent pair is a no-op.
	Delete(k, v cid.CID) error
	// Close releases the target.
	Close() error
}

// MemoryReporter is implemented by targets whose memory lives outside
// this process (a server): used is the bytes the target says its data
// takes, rss its resident set size.
type MemoryReporter interface {
	Memory() (used, rss int64, err error)
}

// Opener opens a fresh, empty target.
type Opener func() (Target, error)

// StoreTarget opens a CIDStore on dir ("" for in memory) with opts.
func StoreTarget(dir string, opts store.Options) Opener {
	return func() (Target, error) {
		if dir == "" {
			opts.InMemory = true
		}
		s, err := store.Open(dir, opts)
		if err != nil {
			return nil, err
		}
		return &StoreAdapter{S: s}, nil
	}
}

// StoreAdapter makes a *store.Store a Target.
type StoreAdapter struct{ S *store.Store }

func (t *StoreAdapter) Name() string { return "CIDStore" }
func (t *StoreAdapter) AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error) {
	return t.S.AppendValues(dst, k), nil
}
func (t *StoreAdapter) Insert(k, v cid.CID) error      { return t.S.Insert(k, v) }
func (t *StoreAdapter) InsertBatch(pairs []Pair) error { return t.S.InsertBatch(pairs) }
func (t *StoreAdapter) Delete(k, v cid.CID) error      { return t.S.Delete(k, v) }
func (t *StoreAdapter) Close() error                   { return t.S.Close() }

// XSyncTarget opens the raw baseline: an xsync.MapOf from key to a sorted
// value slice, replaced copy-on-write under the map's per-bucket lock.
func XSyncTarget() Opener {
	return func() (Target, error) { return &xsyncTarget{m: xsync.NewMapOf[cid.CID, []cid.CID]()}, nil }
}

type xsyncTarget struct {
	m *xsync.MapOf[cid.CID, []cid.CID]
}

func (t *xsyncTarget) Name() string { return "XSyncMapOf" }
func (t *xsyncTarget) AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error) {
	vals, _ := t.m.Load(k)
	return append(dst, vals...), nil
}
func (t *xsyncTarget) Insert(k, v cid.CID) error {
	t.m.Compute(k, func(old []cid.CID, _ bool) ([]cid.CID, bool) {
		if nv, changed := withValue(old, v); changed {
			return nv, false
		}
		return old, false
	})
	return nil
}
func (t *xsyncTarget) InsertBatch(pairs []Pair) error {
	for _, p := range pairs {
		t.Insert(p.Key, p.Value)
	}
	return nil
}
func (t *xsyncTarget) Delete(k, v cid.CID) error {
	t.m.Compute(k, func(old []cid.CID, loaded bool) ([]cid.CID, bool) {
		if !loaded {
			return nil, true
		}
		nv, _ := withoutValue(old, v)
		return nv, len(nv) == 0
	})
	return nil
}
func (t *xsyncTarget) Close() error { t.m.Clear(); return nil }

// SyncMapTarget opens the standard-library baseline: a sync.Map from key
// to a sorted value slice, replaced copy-on-write by compare-and-swap.
func SyncMapTarget() Opener {
	return func() (Target, error) { return &syncMapTarget{}, nil }
}

type syncMapTarget struct{ m sync.Map }

func (t *syncMapTarget) Name() string { return "SyncMap" }
func (t *syncMapTarget) AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error) {
	if vals, ok := t.m.Load(k); ok {
		dst = append(dst, *vals.(*[]cid.CID)...)
	}
	return dst, nil
}
func (t *syncMapTarget) Insert(k, v cid.CID) error {
	for {
		cur, ok := t.m.Load(k)
		if !ok {
			nv := []cid.CID{v}
			if _, loaded := t.m.LoadOrStore(k, &nv); !loaded {
				return nil
			}
			continue
		}
		nv, changed := withValue(*cur.(*[]cid.CID), v)
		if !changed || t.m.CompareAndSwap(k, cur, &nv) {
			return nil
		}
	}
}
func (t *syncMapTarget) InsertBatch(pairs []Pair) error {
	for _, p := range pairs {
		t.Insert(p.Key, p.Value)
	}
	return nil
}
func (t *syncMapTarget) Delete(k, v cid.CID) error {
	for {
		cur, ok := t.m.Load(k)
		if !ok {
			return nil
		}
		nv, changed := withoutValue(*cur.(*[]cid.CID), v)
		switch {
		case !changed:
			return nil
		case len(nv) == 0:
			if t.m.CompareAndDelete(k, cur) {
				return nil
			}
		default:
			if t.m.CompareAndSwap(k, cur, &nv) {
				return nil
			}
		}
	}
}
func (t *syncMapTarget) Close() error { t.m.Clear(); return nil }

// withValue returns a new sorted slice holding vals and v, or vals and
// false when v is already there. vals is never modified.
func withValue(vals []cid.CID, v cid.CID) ([]cid.CID, bool) {
	i, found := slices.BinarySearchFunc(vals, v, cid.Compare)
	if found {
		return vals, false
	}
	nv := make([]cid.CID, len(vals)+1)
	copy(nv, vals[:i])
	nv[i] = v
	copy(nv[i+1:], vals[i:])
	return nv, true
}

// withoutValue returns a new slice holding vals less v, or vals and false
// when v is not there. vals is never modified.
func withoutValue(vals []cid.CID, v cid.CID) ([]cid.CID, bool) {
	i, found := slices.BinarySearchFunc(vals, v, cid.Compare)
	if !found {
		return vals, false
	}
	nv := make([]cid.CID, 0, len(vals)-1)
	nv = append(nv, vals[:i]...)
	return append(nv, vals[i+1:]...), true
}
