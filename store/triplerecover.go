package store

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/triples"
)

// tripleLoad collects the triples of a recovery or an import: the SPO
// entries of a snapshot, bulk-loaded, and the net effect of the WAL's
// triple operations after it. Triple operations are assignments, so of
// the operations on one triple the last in log order decides whether it
// is present: present ones are added to the load, absent ones dropped
// from it (a table of 64-bit fingerprints of the deleted triples turns
// away nearly every loaded triple before the exact map is asked).
type tripleLoad struct {
	l       *triples.Loader
	net     map[Triple]bool // WAL: whether each logged triple ends present
	deletes int             // entries of net that are false
	count   atomic.Int64    // snapshot triples read
}

func (s *Store) newTripleLoad() *tripleLoad {
	return &tripleLoad{l: s.triples.NewLoader(), net: make(map[Triple]bool)}
}

// entries returns the snapshot callbacks for pairs (into loaders) and
// triples, rejecting the reserved zero CID as corruption of from.
func (s *Store) entries(sinks *entrySinks, tl *tripleLoad, from string) snapshot.Entries {
	return snapshot.Entries{
		Pairs: s.loadInto(sinks, from),
		Triples: func(k cid.CID, vals []cid.CID) error {
			if err := checkTripleEntry(from, k, vals); err != nil {
				return err
			}
			tl.l.AddSPO(k, vals)
			tl.count.Add(int64(len(vals) / 2))
			return nil
		},
	}
}

// addOp folds one logged triple operation in, in log order.
func (tl *tripleLoad) addOp(op TripleOp) {
	was, seen := tl.net[op.Triple]
	if seen && !was {
		tl.deletes--
	}
	tl.net[op.Triple] = !op.Delete
	if op.Delete {
		tl.deletes++
	}
}

// load publishes the collected triples into the store's (empty) triple
// indexes; lsn is the last LSN they include.
func (s *Store) loadTriples(tl *tripleLoad, lsn uint64) error {
	for t, present := range tl.net {
		if present {
			tl.l.Add(t)
		}
	}
	if tl.deletes > 0 {
		var fp fingerprints
		fp.init(tl.deletes)
		for t, present := range tl.net {
			if !present {
				fp.add(&t)
			}
		}
		tl.l.SetDrop(func(t *Triple) bool {
			if !fp.has(t) {
				return false
			}
			present, ok := tl.net[*t]
			return ok && !present
		})
	}
	return s.triples.Load(tl.l, lsn)
}

// fingerprints is an open-addressing set of 64-bit triple fingerprints:
// a few nanoseconds to tell that a triple is not among a few deleted ones.
type fingerprints struct {
	slots []uint64 // 0: empty
	mask  uint64
}

func (f *fingerprints) init(n int) {
	size := 1
	for size < 2*n {
		size <<= 1
	}
	f.slots, f.mask = make([]uint64, size), uint64(size-1)
}

// fingerprint mixes the first 8 bytes of each component (CIDs are hashes,
// so these are random enough) into a non-zero word.
func fingerprint(t *Triple) uint64 {
	w := func(c cid.CID) uint64 { return binary.LittleEndian.Uint64(c[:8]) }
	x := w(t.S) ^ bits.RotateLeft64(w(t.P), 21) ^ bits.RotateLeft64(w(t.O), 42)
	x ^= x >> 31
	x *= 0x9e3779b97f4a7c15
	return x | 1
}

func (f *fingerprints) add(t *Triple) {
	x := fingerprint(t)
	for i := x & f.mask; ; i = (i + 1) & f.mask {
		if f.slots[i] == 0 || f.slots[i] == x {
			f.slots[i] = x
			return
		}
	}
}

func (f *fingerprints) has(t *Triple) bool {
	x := fingerprint(t)
	for i := x & f.mask; ; i = (i + 1) & f.mask {
		switch f.slots[i] {
		case x:
			return true
		case 0:
			return false
		}
	}
}

// replayTriple applies one logged triple operation during recovery, after
// the bulk load.
func (s *Store) replayTriple(lsn uint64, op TripleOp) {
	b := s.triples.Prepare([]TripleOp{op})
	b.Lock()
	b.Resolve()
	b.Publish(lsn)
	b.Unlock()
}
