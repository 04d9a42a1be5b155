package store

import (
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/triples"
)

// tripleLoad collects the triples of a recovery or an import: the SPO
// entries of a snapshot, bulk-loaded, and the net effect of the WAL's
// triple operations after it. Triple operations are assignments, so of
// the operations on one triple the last in log order decides whether it
// is present: present ones are added to the load, absent ones deleted
// after it by ordinary batches (far fewer than the triples loaded, and
// cheaper than checking every loaded triple against them).
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
func (s *Store) entries(loaders []*shard.Loader, tl *tripleLoad, from string) snapshot.Entries {
	return snapshot.Entries{
		Pairs: s.loadInto(loaders, from),
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
	if err := s.triples.Load(tl.l, lsn); err != nil {
		return err
	}
	if tl.deletes == 0 {
		return nil
	}
	ops := make([]TripleOp, 0, min(tl.deletes, MaxTripleBatch))
	flush := func() {
		b := s.triples.Prepare(ops)
		b.Lock()
		b.Resolve()
		b.Publish(lsn)
		b.Unlock()
		ops = ops[:0]
	}
	for t, present := range tl.net {
		if !present {
			ops = append(ops, TripleOp{Delete: true, Triple: t})
			if len(ops) == cap(ops) {
				flush()
			}
		}
	}
	if len(ops) > 0 {
		flush()
	}
	return nil
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
