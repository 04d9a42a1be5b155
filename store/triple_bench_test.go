package store

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
)

// Triple benchmarks. The main one, the workload of the Python clients:
//
//	go test ./store -run '^$' -bench 'TripleInsert' -benchtime 1x -cpu 2
//
// inserts CIDSTORE_BENCH_TRIPLES (default 1M) random triples in batches
// of 1000 from 2 goroutines, in memory and under SyncAlways, through the
// triple API and, as the baseline in the same run, through InsertBatch as
// 3 pairs per triple (s->p, p->o, o->s: the three index entries a triple
// needs). Metrics: triples/s, CPU time of the process per triple (steadier
// than wall time on a shared machine: 2 cores / cpu-ns is what an idle
// machine could reach at best) and Go heap bytes per triple (heap in use
// after a collection, before and after the load).

// benchTripleCount is the number of triples the triple benchmarks use.
func benchTripleCount() int {
	if n, err := strconv.Atoi(os.Getenv("CIDSTORE_BENCH_TRIPLES")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// randomTriples returns n random triples: every component distinct.
func randomTriples(n int) []Triple {
	ts := make([]Triple, n)
	for i := range ts {
		u := uint64(i)
		ts[i] = Triple{S: benchKey(u), P: benchKey(u + 1<<40), O: benchKey(u + 2<<40)}
	}
	return ts
}

// hotTriples returns n triples sharing one predicate, with distinct
// subjects and objects.
func hotTriples(n int) []Triple {
	ts := randomTriples(n)
	for i := range ts {
		ts[i].P = benchKey(1 << 50)
	}
	return ts
}

// shapedTriples returns subjects x preds x objs triples: each subject has
// every one of preds predicates (shared by all subjects) with objs
// objects each (drawn from a pool of 100k, so objects repeat too).
func shapedTriples(subjects, preds, objs int) []Triple {
	ts := make([]Triple, 0, subjects*preds*objs)
	for s := range subjects {
		for p := range preds {
			for o := range objs {
				i := uint64(s*preds*objs + p*objs + o)
				ts = append(ts, Triple{S: benchKey(uint64(s)), P: benchKey(uint64(p) + 1<<45), O: benchKey(splitmix(i)%100_000 + 1<<46)})
			}
		}
	}
	return ts
}

const tripleBatch = 1000

// insertBatches inserts ts in batches of tripleBatch from writers
// goroutines and returns the time it took.
func insertBatches(b *testing.B, writers int, ts []Triple, insert func([]Triple) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(tripleBatch)) - tripleBatch
				if i >= len(ts) {
					return
				}
				if err := insert(ts[i:min(i+tripleBatch, len(ts))]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// asPairs inserts triples as 3 pairs each through InsertBatch.
func asPairs(s *Store) func([]Triple) error {
	return func(ts []Triple) error {
		pairs := make([]Pair, 0, 3*len(ts))
		for _, t := range ts {
			pairs = append(pairs, Pair{t.S, t.P}, Pair{t.P, t.O}, Pair{t.O, t.S})
		}
		return s.InsertBatch(pairs)
	}
}

func BenchmarkTripleInsert(b *testing.B) {
	n := benchTripleCount()
	random := randomTriples(n)
	cases := []struct {
		name string
		ts   []Triple
		api  string
		sync bool
	}{
		{"random/api=triples/mode=memory", random, "triples", false},
		{"random/api=triples/mode=always", random, "triples", true},
		{"random/api=pairs/mode=memory", random, "pairs", false},
		{"random/api=pairs/mode=always", random, "pairs", true},
		{"hot-predicate/api=triples/mode=memory", hotTriples(n), "triples", false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				dir := ""
				if c.sync {
					dir = b.TempDir()
				}
				before := heapInUse()
				s, err := Open(dir, Options{})
				if err != nil {
					b.Fatal(err)
				}
				insert := func(ts []Triple) error { _, err := s.InsertTriples(ts); return err }
				if c.api == "pairs" {
					insert = asPairs(s)
				}
				cpu0 := processCPU()
				d := insertBatches(b, 2, c.ts, insert)
				b.ReportMetric(float64(len(c.ts))/d.Seconds(), "triples/s")
				b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(len(c.ts)), "cpu-ns/triple")
				if !c.sync {
					b.ReportMetric(float64(heapInUse()-before)/float64(len(c.ts)), "heapB/triple")
				}
				if c.api == "triples" && s.TripleCount() != len(c.ts) {
					b.Fatalf("%d triples stored, want %d", s.TripleCount(), len(c.ts))
				}
				runtime.KeepAlive(s)
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTripleHotPredicate inserts 1M triples that share one
// predicate, in batches of 1000 on one goroutine, and reports the cost
// per triple of the first and the last tenth. It also times 1000 single
// InsertTriple calls of new triples with that predicate once 10k and once
// all 1M are in: with copy-on-write B-tree value sets one insert copies a
// root-to-leaf path, O(log n), so the two differ little; copying the set
// (64 bytes a triple) would make the second a hundred times dearer.
func BenchmarkTripleHotPredicate(b *testing.B) {
	n := benchTripleCount()
	ts := hotTriples(n + 2000)
	singles := func(s *Store, from int) float64 {
		t0 := time.Now()
		for _, t := range ts[from : from+1000] {
			if err := s.InsertTriple(t); err != nil {
				b.Fatal(err)
			}
		}
		return float64(time.Since(t0).Nanoseconds()) / 1000
	}
	for b.Loop() {
		s, err := Open("", Options{})
		if err != nil {
			b.Fatal(err)
		}
		tenth := n / 10
		var first, last time.Duration
		for i := 0; i < n; i += tripleBatch {
			if i == 10_000 {
				b.ReportMetric(singles(s, n), "ns/insert-at-10k")
			}
			t0 := time.Now()
			if _, err := s.InsertTriples(ts[i:min(i+tripleBatch, n)]); err != nil {
				b.Fatal(err)
			}
			d := time.Since(t0)
			if i < tenth {
				first += d
			} else if i >= n-tenth {
				last += d
			}
		}
		b.ReportMetric(float64(first.Nanoseconds())/float64(tenth), "ns/triple-first10%")
		b.ReportMetric(float64(last.Nanoseconds())/float64(tenth), "ns/triple-last10%")
		b.ReportMetric(float64(last)/float64(first), "last/first")
		b.ReportMetric(singles(s, n+1000), "ns/insert-at-all")
		s.Close()
	}
}

// BenchmarkTripleQuery measures each of the eight patterns on a store of
// 1M triples, random or shaped (10k subjects x 10 predicates x 10
// objects), from one goroutine: p50 and p99 latency of one whole query
// (all its answers read), over queries for components of stored triples.
// ??? walks the whole store; HasTriple is the SPO pattern. Each sample is
// taken with two clock reads; the "timer" sub-benchmark reports what two
// clock reads alone measure in the same run.
func BenchmarkTripleQuery(b *testing.B) {
	b.Run("timer", func(b *testing.B) {
		lat := make([]time.Duration, 20_000)
		for b.Loop() {
			for i := range lat {
				t0 := time.Now()
				lat[i] = time.Since(t0)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	})
	n := benchTripleCount()
	for _, shape := range []struct {
		name string
		ts   []Triple
	}{{"random", randomTriples(n)}, {"shaped", shapedTriples(n/100, 10, 10)}} {
		s, err := Open("", Options{})
		if err != nil {
			b.Fatal(err)
		}
		insertBatches(b, 2, shape.ts, func(ts []Triple) error { _, err := s.InsertTriples(ts); return err })
		for _, pat := range []string{"SPO", "SP?", "S?O", "?PO", "S??", "?P?", "??O", "???"} {
			b.Run(fmt.Sprintf("shape=%s/pattern=%s", shape.name, pat), func(b *testing.B) {
				samples := 20_000
				if pat == "???" || (shape.name == "shaped" && pat == "?P?") {
					samples = 5
				}
				lat := make([]time.Duration, 0, samples)
				answers := 0
				for b.Loop() {
					lat = lat[:0]
					for i := range samples {
						t := shape.ts[splitmix(uint64(i))%uint64(len(shape.ts))]
						q := t
						for c, ch := range pat {
							if ch == '?' {
								switch c {
								case 0:
									q.S = cid.Zero
								case 1:
									q.P = cid.Zero
								case 2:
									q.O = cid.Zero
								}
							}
						}
						t0 := time.Now()
						if pat == "SPO" {
							if s.HasTriple(q) {
								answers++
							}
						} else {
							for range s.Query(q.S, q.P, q.O) {
								answers++
							}
						}
						lat = append(lat, time.Since(t0))
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
				b.ReportMetric(float64(answers)/float64(b.N*samples), "answers/query")
			})
		}
		s.Close()
	}
}

// BenchmarkTripleRecovery opens a directory holding a snapshot of
// CIDSTORE_BENCH_TRIPLES (default 1M) random triples and, after it in the
// WAL, 100k single-triple records (50k inserts of new triples, 50k deletes
// of snapshot triples), and reports the time Open takes to recover. The
// directory is built once per run (CIDSTORE_BENCH_TRIPLE_RECOVERY_DIR
// keeps it between runs).
func BenchmarkTripleRecovery(b *testing.B) {
	n := benchTripleCount()
	const walOps = 100_000
	dir := b.TempDir()
	if keep := os.Getenv("CIDSTORE_BENCH_TRIPLE_RECOVERY_DIR"); keep != "" {
		dir = keep
	}
	if _, err := os.Stat(dir + "/LOCK"); err != nil {
		buildTripleRecoveryDir(b, dir, n, walOps)
	}
	b.ResetTimer()
	for b.Loop() {
		benchOpen(b, dir, uint64(n+walOps), "triples/s", func(r *Store) bool {
			rec := r.Stats().Recovery
			return rec.SnapshotTriples == int64(n) && rec.Records == walOps && r.TripleCount() == n
		})
	}
}

func buildTripleRecoveryDir(b *testing.B, dir string, n, walOps int) {
	s, err := Open(dir, Options{Config: withConfig(func(c *Config) {
		c.Sync = SyncNever
		c.CheckpointWALBytes, c.CheckpointInterval = 0, 0
	})})
	if err != nil {
		b.Fatal(err)
	}
	ts := randomTriples(n + walOps/2)
	insertBatches(b, 2, ts[:n], func(ts []Triple) error { _, err := s.InsertTriples(ts); return err })
	if err := s.Checkpoint(context.Background()); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < walOps; i = int(next.Add(1)) - 1 {
				var err error
				if i%2 == 0 {
					err = s.InsertTriple(ts[n+i/2])
				} else {
					err = s.DeleteTriple(ts[i/2])
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}
