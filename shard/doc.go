// Package shard holds the in-memory state of one shard of a CIDStore: a map
// from key CID to the set of value CIDs stored under it.
//
// A shard combines three things:
//
//   - an xsync.MapOf from a seeded 64-bit hash of the key to *record, read
//     without locks. The record holds the full key, which every lookup
//     checks; a key whose hash is already taken by another live key goes
//     to a second xsync.MapOf keyed by the full CID, consulted only while
//     it is non-empty. Hash keys keep a map entry at 16 bytes instead of
//     48, which is most of the difference between ~170 and ~132 heap bytes
//     per pair. The hash is cid.CID.Hash under Options.Seed, so a caller
//     that picks a shard from the top bits of the same hash (the store)
//     hashes a key once and reads through Lookup;
//   - a btree.BTreeG of the same records ordered by key, for ordered scans
//     and O(1) copy-on-write Clone (point-in-time views for iteration and
//     snapshots). Its items carry the key's first 64 bits inline so that
//     searches compare integers instead of dereferencing records;
//   - a mutex that serialises writers. The caller holds it across "log the
//     operation, then publish it", so a key's log order equals its memory
//     order. Every hold that spans a call is released by defer, here and
//     in the store, so that a panic (a bug) never leaves a shard locked.
//     The store's maintenance scheduler recovers a panicking worker and
//     counts it as an error instead of crashing: a maintenance step logs
//     nothing, and what a step cut short can leave inconsistent, the index
//     and the counters, derives from the map, which Audit checks and
//     RebuildIndex rebuilds. A lock left held would instead hang every
//     later writer of the shard and Close.
//
// Value sets are immutable once published. A writer that changes a key's
// form (a new key, one value becoming two, a slice becoming a B-tree)
// builds a new record and stores it in the map and the B-tree. A writer
// that adds a value to, or removes one from, a key of two or more values
// builds a new set of the same form and swaps it into the key's record
// with one atomic store, without touching the map or the B-tree, as long
// as no View can hold that record: every View moves the shard's epoch on,
// and a record published before the latest View is replaced instead, so
// a view keeps the values it was taken with. A reader loads a set once
// per call and keeps a consistent, sorted value set. Readers therefore
// never see a torn or unsorted set and never block writers.
//
// Value sets are sorted and free of duplicates. One value lives inline in
// the 64-byte record; such records, for new keys and for bulk loads, are
// carved from slabs (see slab.go), so that inserting a new key allocates
// only its map entry. Up to InlineMax values live in a sorted array,
// one pointer-free allocation of a count word and the values, searched
// by a scan from the start up to 32 values (linearMax in record.go: the
// scan reads cache lines in order, which the hardware prefetches) and by
// binary search beyond; larger sets switch to a copy-on-write B-tree of CIDs and switch
// back once they shrink to half the threshold.
//
// A Loader builds an empty shard in bulk, as recovery and import do: it
// collects entries (and the logged operations to apply on top of them),
// one at a time or in batches (AddSingles, AddOps), sorts pointer-free
// (prefix, index) pairs with a radix sort of the prefixes' top bits,
// merges entries and operations key by key, builds the B-tree by
// inserting the keys in descending order (which leaves every node's item
// array full; see buildIndex) and then fills the map in the order of its
// buckets. Single-value records come from slabs of up to 64 KiB, so the
// garbage collector marks a few large objects instead of millions of
// small ones; a slab's memory is freed once every record in it is gone.
//
// The package imports only cid, internal/bulk (the radix sort it shares
// with package triples) and its two data-structure libraries.
package shard
