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
// value set: a writer builds a new immutable value set and publishes it in
// one step (in a new record, or swapped into the key's record when no view
// can hold it; see package shard). Writes to different shards proceed in
// parallel.
//
// InsertBatch and ApplyBatch are atomic for iteration, Export and
// checkpoints, which see all of a batch or none of it, while batches run in
// parallel: a batch holds its shards' locks only to log its WAL record and
// queue each shard's share, and is applied shard by shard after that.
// Whoever locks a shard first applies what is queued on it, so a key's
// memory order is its log order, and the consistent cut applies every
// queue under every lock (see publish.go). Point reads of different keys
// may observe a batch partly applied.
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
// # Directory layout
//
// A persistent store is a directory (mode 0700; Open creates it and any
// missing parents, and removes what it created if it then fails). Layout
// names its parts:
//
//	LOCK                                flock(2) lock file: one Store (or Repair) at a time
//	wal/                                the write-ahead log, package wal's directory:
//	  00000000000000000001.wal          segments named by the LSN of their first record
//	snapshots/                          snapshots (package snapshot), named by cut LSN:
//	  00000000000000004711.snap         every write up to LSN 4711
//	  00000000000000004711.snap.tmp     being written
//	  00000000000000004711.snap.del.tmp being removed
//	  *.corrupt                         moved aside (vfs.MoveAside)
//
// A directory is a store directory if it holds wal/. Open refuses, with
// ErrNotStore, a directory without one that holds segments or snapshots
// itself (a store's wal/ or snapshots/ given for the store). Files are
// created with mode 0600. The store's own temporary files are removed by
// Open, Repair and the gc worker; other files are left alone whatever
// their names. A *.corrupt file is a file that did not validate (or a
// file named like a snapshot that recovery did not load), kept for a
// person to examine: nothing reads or removes it.
//
// # Durability and recovery
//
// What is made durable, and when:
//
//   - A write appends one WAL record (a batch is one record) and returns
//     as Config.Sync says: under SyncAlways after the record's segment was
//     fdatasync'ed, shared by the writers of one group commit; under
//     SyncInterval and SyncNever once it was written to the operating
//     system, fsynced every Config.SyncInterval or left to the OS. A
//     segment is fsynced before the next one is created, and at Close,
//     whatever the policy; a new segment is created under a temporary
//     name, fsynced, renamed and its directory fsynced (package wal).
//   - A checkpoint takes a cut, then fsyncs the WAL up to it (no snapshot
//     may name an LSN the log could still lose), writes the snapshot to
//     N.snap.tmp, fsyncs it, renames it to N.snap and fsyncs snapshots/.
//     Only then retention runs: snapshots beyond Config.SnapshotsKept are
//     renamed to N.snap.del.tmp (snapshots/ fsynced) before any of their
//     bytes go, and WAL segments wholly below the oldest kept snapshot are
//     removed (wal/ fsynced). Every kept snapshot can so be brought up to
//     date from the WAL.
//   - Import loads the stream, logs an imported record if the WAL holds
//     records (see Repair), and checkpoints: the imported data is in no
//     WAL record, only in that snapshot, and the checkpoint's WAL fsync
//     makes the record durable before the snapshot is written.
//   - Restore logs an empty batch record to claim a fresh LSN L, fsyncs
//     the WAL, writes the new contents as the snapshot L as a checkpoint
//     does, and only then changes the shards; older snapshots and the WAL
//     below L are removed afterwards.
//   - Close flushes and fsyncs the WAL and releases LOCK.
//
// Open reads, in this order: it validates the Options, refuses a
// directory that is not a store but holds a store's files, creates
// snapshots/ and takes LOCK (ErrLocked if another Store holds it). LOCK
// is the directory's one lock file and covers wal/ too: the WAL takes
// none. With Options.Repair it then repairs the directory (see Repair).
// It removes a wal/LOCK left by an earlier version, which took that lock
// too but only after LOCK, so the two versions still exclude each other.
// It starts the WAL's recovery (wal.Recover: creating wal/, removing
// temporary segments a crash left, listing the segments), which reads no
// record yet; then it lists snapshots/ and removes the store's leftover
// temporary files.
//
// The WAL is then read once, from its first record to its last, in one
// pass that checks every record's checksum, LSN and payload (validate.go)
// and hands it on. While the newest snapshot is read in full, validating
// every block, that pass runs beside it: records up to the snapshot's cut
// are only checked, and the operations after it (up to a bound) are
// folded into the same bulk load, sorted with the snapshot's entries.
// The snapshot's decoders and the WAL pass hand their entries and
// operations to each shard's loader in batches (entrySinks, mergeWAL),
// so that the goroutines feeding the loaders do not trade their locks
// between the cores on every entry. A
// snapshot that does not validate is logged and skipped for the next
// older one, whose records after its cut the pass reads again from the
// start of the log if it had already gone past them; an error reading a
// snapshot that is not damage fails Open. The load is published into the
// shards and triple indexes, and the pass goes on, replaying the
// remaining records in parallel per shard (each key's in log order).
// Up to that replay the garbage collector is paused (GOGC=off, process
// wide; a memory limit still applies), since the bulk load keeps nearly
// all it allocates (gcpause.go).
// Where the pass ends in a torn final write, that tail is cut (counted in
// RecoveryStats.TornBytes); any other damage ends it with ErrCorrupt. The
// WAL is then open for appending, and Open checks that the snapshot and
// the WAL fit (the WAL reaches back to just after the cut, holds whatever
// the skipped snapshots held, and has no imported record after the cut)
// and starts the workers. Options.ReadOnly needs an existing store
// directory and reads it the same way, changing nothing: a torn tail is
// left in place and not read, no file is removed, and LOCK is taken only
// if it exists on a writable filesystem.
//
// What each failure does:
//
//   - A failed WAL write or fsync is sticky: every later write fails with
//     ErrReadOnly wrapping the cause, nothing written after the failure
//     is acknowledged, reads go on. Reopening recovers what was durable.
//   - A checkpoint that fails to write its snapshot returns the error and
//     leaves no partial file; the WAL still holds everything, and the
//     next checkpoint tries again. (A failed WAL fsync at its start is
//     the sticky failure above.) A failed retention step is reported
//     (Checkpoint returns it, the gc worker counts it) and retried by the
//     next checkpoint or gc run; it loses nothing.
//   - An Import whose checkpoint fails after its imported record was
//     logged turns the store read-only: Repair drops the import.
//   - A crash at any point leaves at most a torn WAL tail, which Open
//     cuts, and temporary files, which Open removes; a snapshot is renamed into
//     place whole, so a crashed checkpoint or Restore leaves the old
//     snapshots or the new one, and the WAL to go on from either.
//   - Open fails with ErrLocked, ErrNotStore, ErrInvalidOptions, an I/O
//     error as it is, or ErrCorrupt naming the file and offset when the
//     directory holds damage it cannot recover from without losing an
//     acknowledged write (see Damage).
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
