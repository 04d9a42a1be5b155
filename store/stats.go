package store

import "sync/atomic"

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

// Stats is a point-in-time summary of a store.
type Stats struct {
	Keys   int          // keys in the store
	Pairs  int          // (key, value) pairs in the store
	Shards []ShardStats // per shard, in shard order
	Ops    OpStats      // write operations since Open
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
	return st
}
