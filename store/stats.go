package store

import (
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/triples"
	"github.com/cidstore/cidstore/wal"
)

// opCounts are one shard's write counters. They are written under the
// shard lock and read atomically; the padding keeps shards off each
// other's cache lines.
type opCounts struct {
	inserts    atomic.Int64
	deletes    atomic.Int64
	deleteKeys atomic.Int64
	batches    atomic.Int64
	_          [32]byte
}

// count records one applied operation of the given kind.
func (c *opCounts) count(kind uint8) {
	switch kind {
	case opAdd:
		c.inserts.Add(1)
	case opRemove:
		c.deletes.Add(1)
	default:
		c.deleteKeys.Add(1)
	}
}

// tripleCounts count triple writes that changed the store.
type tripleCounts struct {
	inserts, deletes, batches atomic.Int64
}

// count records the net changes of one triple write.
func (c *tripleCounts) count(changes []TripleOp) {
	for i := range changes {
		if changes[i].Delete {
			c.deletes.Add(1)
		} else {
			c.inserts.Add(1)
		}
	}
	if len(changes) > 1 {
		c.batches.Add(1)
	}
}

// Stats is a point-in-time summary of a store.
type Stats struct {
	Keys  int // keys in the store
	Pairs int // (key, value) pairs in the store
	// Triples is the number of triples; TripleIndexes describes the SPO,
	// POS and OSP indexes (in that order) and TripleOps counts triple
	// writes.
	Triples       int
	TripleIndexes []TripleIndexStats
	TripleOps     TripleOpStats
	Shards        []ShardStats // per shard, in shard order
	Ops           OpStats      // write operations since Open

	Persistent  bool            // whether the store has a WAL (see Store.Persistent)
	ReadOnly    string          // the sticky write failure, if any
	WAL         wal.Stats       // appends, bytes, fsyncs, records per fsync; zero in memory
	Checkpoints CheckpointStats // checkpoints since Open
	Recovery    RecoveryStats   // what Open recovered
	Workers     []maintenance.WorkerStats
	Maintenance MaintenanceStats
}

// MaintenanceStats are the results of the background workers.
type MaintenanceStats struct {
	ScrubRuns        int64           // scrub passes
	ScrubFailures    int64           // passes that found damage
	ScrubRecords     int64           // WAL records verified by the last pass
	ScrubSnapshots   int64           // snapshots verified by the last pass
	ScrubRecordTypes map[uint8]int64 // WAL records per type, last pass
	AuditMismatches  int64           // index entries that disagreed with a map
	AuditRepairs     int64           // shard indexes rebuilt
	Compacted        int64           // value sets converted back to inline
	GCRemoved        int64           // obsolete files removed
}

// ShardStats describes one shard.
type ShardStats struct {
	Keys, Pairs int
}

// OpStats counts write operations that changed the store since Open.
// Reads are not counted: a shared counter on the read path would cost the
// lock-free reads their scalability.
type OpStats struct {
	Inserts    int64 // pairs added (by Insert or InsertBatch)
	Deletes    int64 // pairs removed by Delete
	DeleteKeys int64 // keys removed by DeleteKey
	Batches    int64 // InsertBatch calls applied
}

// CheckpointStats describe the snapshots written since Open, by
// checkpoints and by Restore.
type CheckpointStats struct {
	Count        int64         // snapshots written
	LastLSN      uint64        // cut LSN of the newest snapshot
	LastTime     time.Time     // when the last one was finished
	LastDuration time.Duration // time to write the last one
	LastBytes    int64         // its size on disk
	LastPairs    int64         // pairs in it
	LastTriples  int64         // triples in it
	// LastStall is how long writers waited for the last one: the cut's
	// hold of the shard locks, or (Restore) the whole snapshot write.
	LastStall time.Duration
}

// RecoveryStats describe what Open recovered.
type RecoveryStats struct {
	Duration         time.Duration // total time spent recovering
	SnapshotLSN      uint64        // cut LSN of the snapshot loaded (0: none)
	SnapshotPairs    int64         // pairs loaded from it
	SnapshotTriples  int64         // triples loaded from it
	SnapshotDuration time.Duration // time spent reading and validating it
	SnapshotsSkipped int           // newer snapshots that failed to validate
	Records          int64         // WAL records replayed after the snapshot
	Ops              int64         // operations in them
	TornBytes        int64         // torn tail cut from the last WAL segment
	Repair           *RepairReport // what Options.Repair changed (nil: nothing)
}

// TripleIndexStats describes one triple index.
type TripleIndexStats struct {
	Index   string // "SPO", "POS" or "OSP"
	Keys    int    // distinct keys: subjects, predicates or objects
	Triples int    // triples it holds (every index holds all of them)
	Trees   int    // keys whose triples are kept in a B-tree
}

// TripleOpStats counts triple writes that changed the store since Open.
type TripleOpStats struct {
	Inserts int64 // triples added
	Deletes int64 // triples removed
	Batches int64 // calls that changed more than one triple
}

func (s *Store) tripleStats() (int, []TripleIndexStats, TripleOpStats) {
	st := s.triples.Stats()
	idx := make([]TripleIndexStats, len(st))
	for i, o := range triples.Orders {
		idx[i] = TripleIndexStats{Index: o.String(), Keys: st[o].Keys, Triples: st[o].Triples, Trees: st[o].Trees}
	}
	c := &s.tcounts
	return st[triples.SPO].Triples, idx, TripleOpStats{Inserts: c.inserts.Load(), Deletes: c.deletes.Load(), Batches: c.batches.Load()}
}

// Stats returns current statistics. Figures are read shard by shard
// without stopping writers, so under load they are approximate.
func (s *Store) Stats() Stats {
	st := Stats{Shards: make([]ShardStats, len(s.shards))}
	for i, sh := range s.shards {
		ss := ShardStats{Keys: sh.Keys(), Pairs: sh.Pairs()}
		st.Shards[i] = ss
		st.Keys += ss.Keys
		st.Pairs += ss.Pairs
		c := &s.counts[i]
		st.Ops.Inserts += c.inserts.Load()
		st.Ops.Deletes += c.deletes.Load()
		st.Ops.DeleteKeys += c.deleteKeys.Load()
		st.Ops.Batches += c.batches.Load()
	}
	st.Triples, st.TripleIndexes, st.TripleOps = s.tripleStats()
	st.Persistent = s.wal != nil
	if err := s.readOnly(); err != nil {
		st.ReadOnly = err.Error()
	}
	if s.wal != nil {
		st.WAL = s.wal.Stats()
	}
	st.Checkpoints = s.ckpt.statistics()
	st.Recovery = s.recovery
	if s.sched != nil {
		st.Workers = s.sched.Stats()
	}
	m := &s.maint
	st.Maintenance = MaintenanceStats{
		ScrubRuns:       m.scrubRuns.Load(),
		ScrubFailures:   m.scrubCorrupt.Load(),
		ScrubRecords:    m.scrubRecords.Load(),
		ScrubSnapshots:  m.scrubSnapshots.Load(),
		AuditMismatches: m.auditMismatches.Load(),
		AuditRepairs:    m.auditRepairs.Load(),
		Compacted:       m.compacted.Load(),
		GCRemoved:       m.gcRemoved.Load(),
	}
	if p := m.scrubByType.Load(); p != nil {
		st.Maintenance.ScrubRecordTypes = *p
	}
	return st
}
