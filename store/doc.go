// Package store is the public API of CIDStore: a concurrent, multi-valued
// map from 256-bit content IDs to sorted sets of content IDs, and beside it
// a set of (subject, predicate, object) triples of CIDs with all eight
// pattern queries (see Triple, ApplyTriples and Query; the indexes are
// package triples). Pairs and triples share the WAL, the snapshots and the
// maintenance workers but never each other's entries.
//
// # Semantics
//
// Every key maps to a set of values: sorted ascending, no duplicates.
// Insert is idempotent, Delete removes one value, DeleteKey removes them
// all, and a key with no values does not exist. Get of a missing key
// returns nil, not an error. The all-zero CID is reserved and rejected as a
// key or value with ErrInvalidCID.
//
// # Concurrency
//
// All methods are safe for concurrent use. Keys are spread over shards by a
// seeded hash; each shard has a lock-free map for point reads, a B-tree for
// ordered scans, and a mutex that serialises its writers. Get, Contains,
// Count and AppendValues never take a lock and always see a whole, sorted
// value set: a writer builds a new immutable record and publishes it in one
// step. Writes to different shards proceed in parallel.
//
// InsertBatch is atomic for iteration: it holds the locks of every shard it
// touches while it publishes, so All and Range see all of a batch or none of
// it. Point reads of different keys may observe a batch partly applied.
//
// All and Range iterate a consistent point-in-time view in ascending key
// order, merging the shards' B-trees; the view costs O(1) per shard and the
// iteration holds no lock.
//
// # Configuration
//
// Options hold what is fixed while a store is open (shard count, in-memory
// or not, WAL segment size and preallocation, repair, filesystem, logger,
// clock) and the initial Config. Config holds what may change while it
// runs: the sync policy, the inline threshold, snapshot retention,
// checkpoint triggers and pace, and the background workers. No setting is
// in both. Options.Config nil means DefaultConfig(); a non-nil Config is
// used exactly as given, every field validated and none replaced by its
// default. Store.UpdateConfig validates a changed Config and swaps it in
// atomically (package maintenance's Holder); the WAL, the shards and the
// workers follow at once. Bad Options or a bad Config are reported with
// an error wrapping ErrInvalidOptions.
//
// # Lifecycle
//
// Open with an empty directory (or Options.InMemory) gives a pure in-memory
// store. Close is idempotent; after it every write returns ErrClosed and
// reads return empty results. Options.ReadOnly opens an existing store
// directory without changing anything on disk.
//
// # Damage
//
// Open, VerifyDir, Repair and the scrub worker validate a directory with
// the same checks (validate.go), so they agree on what is damaged. Open
// fails with ErrCorrupt, naming the file, on damage other than a torn
// final write and whenever the WAL cannot rebuild a snapshot it has to
// skip; it never comes up with less than was acknowledged without an
// error. Repair (or Options.Repair) makes such a directory open again,
// keeping everything that follows the newest valid snapshot up to the
// first damage after it, and moves what it drops aside instead of
// deleting it.
package store
