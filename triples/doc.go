// Package triples holds the in-memory triple indexes of a CIDStore: a set
// of (subject, predicate, object) triples of CIDs, answering all eight
// query patterns from an index.
//
// # Indexes
//
// A Set keeps every triple in three indexes, SPO, POS and OSP. In each,
// the first component of the rotation is the key and the (second, third)
// pairs under it form a sorted value set: SPO holds s -> {(p, o)}, POS
// p -> {(o, s)}, OSP o -> {(s, p)}. Every pattern with a bound component
// is one lock-free map lookup plus a binary search or B-tree seek in one
// immutable value set (see Set.Query); ??? walks SPO in key order.
//
// Each index is split into shards by a seeded hash of its key, so every
// pattern touches one shard. A shard is the structure of package shard
// (an xsync map from the key's 64-bit hash to an immutable record, read
// without locks, with an overflow map, made on first use, for the rare
// keys whose hash is taken; a mutex for writers), with triples for
// values. Only SPO shards also keep a google/btree of their records in
// key order, for ordered walks and O(1) copy-on-write clones: every
// ordered walk (???, snapshots, exports) reads SPO, so POS and OSP are
// only ever read by key. That saves two of the three B-tree inserts of a
// triple (a third of the insert time) and about 46 bytes.
//
// # Records, and where a triple's bytes go
//
// The decisive case for memory is a key with one value: for random
// triples nearly every subject, predicate and object occurs once, so
// nearly every record of all three indexes has one value, and such a
// record would hold the same three CIDs in each index (the key and the
// two value components). Instead of three 96-byte records, the record of
// a single-valued key IS the triple: one 96-byte allocation, published by
// each index whose key has no other value, the index's rotation telling
// which component is the key. A key with two or more values gets a multi
// record: a head Triple with the key in the index's position and zero
// CIDs elsewhere (no stored triple has a zero component, so a zero
// second component marks a multi), then the values, a sorted slice of
// 64-byte pairs up to InlineMax values and a copy-on-write B-tree of
// pairs (degree 16) beyond. Records are never modified once published.
//
// At one million random triples that makes, per triple: the shared
// record, 96 bytes; per index (three times) a map entry (16 bytes: the
// hash and the pointer; xsync allocates one per key) and its share of a
// bucket (64-byte buckets of 5 entries in a power-of-two table at most 75%
// full: 17 to 34 bytes); in SPO a B-tree item (16 bytes in nodes of
// degree 64, about 70% full: about 23 bytes). BENCHMARKS.md has the
// measured total (about 270 bytes).
//
// Three separate records would cost 3 x 96 bytes (288) before any index
// overhead; value sets holding pointers to shared triples instead of
// 64-byte pairs would save memory for keys with many values but make
// every comparison in a search a pointer chase.
//
// # Hot keys
//
// A key with millions of values (one predicate such as rdf:type) keeps
// them in a B-tree of degree 16. A change clones it copy-on-write, which
// copies only the nodes on the changed paths, and a batch applies all of
// one key's changes to one clone: n changes to a key of m values cost
// O(n log m), never a copy of the set. Sharding by key puts a hot key in
// one shard, so its inserts are serialised there; POS needs nothing more
// than the B-tree, since each of its updates is O(log m).
//
// # Bulk load
//
// Recovery and import go through a Loader: triples are copied into 96 KiB
// slabs (few objects for the collector to mark), then partitioned by
// index shard and sorted with a radix sort, SPO by key prefix (its B-tree
// is built in key order), POS and OSP by map bucket only (they need
// grouping by key, not order); a triple is read again only where entries
// share a sort key. Maps are filled in bucket order, a sweep instead of a
// cache miss per key.
//
// # Writes and atomicity
//
// Writes go through a Batch (see there): preparation without locks, then
// the locks of the touched shards in one fixed order (SPO shards
// ascending, then POS, then OSP), resolution of what changes, logging by
// the caller, and publication of the three indexes in parallel, a shard
// on one goroutine at a time. A consistent cut (LockAll, then View)
// therefore sees a batch whole or not at all in all three indexes;
// lock-free point reads may see it in one index a moment before another.
//
// The audit (Set.Audit) checks each SPO B-tree against its map and the
// three indexes against each other while writers go on, and settles a
// triple that is not in all three by majority under its shards' locks.
//
// The package imports only cid, internal/bulk and its two data-structure
// libraries, like package shard.
package triples
