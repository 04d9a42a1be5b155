// Package bench generates key/value workloads, runs them against a store
// and reports what they achieved. The cidstore CLI's bench command and the
// peers module (bench/peers, a separate Go module so that the library's
// go.mod stays lean) are front ends to it.
//
// A Workload fixes the key distribution (uniform or Zipfian over KeySpace
// keys), how many values each key holds after the preload, the mix of
// reads (AppendValues), inserts (Insert, or InsertBatch when BatchSize > 1)
// and deletes, the goroutine count, and how long to run (Duration) or how
// many operations to do (Ops). The run preloads the keys when asked,
// measures heap bytes per preloaded pair (after a GC, before and after the
// load), then runs the mix, timing every call into one HDR histogram per
// goroutine that are merged at the end.
//
// Targets sit behind the Target interface so the same workload runs
// against a CIDStore (in memory or on a directory with a sync mode), a raw
// xsync.MapOf baseline, a sync.Map baseline, or a peer database.
// TripleTarget runs the same workload through the triple API: key k and
// value v become the triple (k, one of 16 predicates, v).
//
// Writes choose their value from a per-key universe of 2 x ValuesPerKey
// values (the preload inserts the first half), so inserts and deletes keep
// hitting both present and absent pairs and the sets keep churning around
// ValuesPerKey values when inserts and deletes are balanced.
package bench
