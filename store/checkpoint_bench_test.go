package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
)

// Benchmarks for checkpoints and recovery. They build large stores and
// run once per size; run them explicitly:
//
//	go test ./store -run '^$' -bench '^Benchmark(Checkpoint|Recovery)$' -benchtime 1x -timeout 30m
//
// (the unanchored 'Checkpoint|Recovery' also runs TripleRecovery and
// WriterLatencyDuringCheckpoint).

// sortedKeys returns n random-looking keys in ascending order: the high
// word spreads evenly over the key space, the rest is noise.
func sortedKey(i, n uint64) cid.CID {
	step := ^uint64(0) / n
	return cid.FromWords(i*step+splitmix(i)%step, splitmix(i^1), splitmix(i^2), splitmix(i^3))
}

// randomSortedValue is value j of vals for key i: random-looking (so it
// does not compress, like real CIDs) and ascending in j.
func randomSortedValue(i, j, vals uint64) cid.CID {
	step := ^uint64(0) / vals
	x := splitmix(i*0x9e3779b97f4a7c15 + j)
	return cid.FromWords(j*step+x%step, splitmix(x), splitmix(x^1), splitmix(x^2))
}

// syntheticSnapshot writes a snapshot stream of n pairs (n/vals keys with
// vals values each) over parts partitions.
func syntheticSnapshot(b *testing.B, path string, n, vals uint64) {
	b.Helper()
	keys := n / vals
	const parts = 8
	ps := make([]snapshot.Part, parts)
	for p := uint64(0); p < parts; p++ {
		lo, hi := keys*p/parts, keys*(p+1)/parts
		ps[p] = func(yield func(cid.CID, []cid.CID) bool) {
			buf := make([]cid.CID, vals)
			for i := lo; i < hi; i++ {
				for j := range buf {
					buf[j] = randomSortedValue(i, uint64(j), vals)
				}
				if !yield(sortedKey(i, keys), buf) {
					return
				}
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := snapshot.Write(context.Background(), f, snapshot.Header{}, ps); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// importedStore opens a durable store in dir holding n pairs, loaded
// through Import (bulk load plus checkpoint).
func importedStore(b *testing.B, dir string, n uint64) *Store {
	b.Helper()
	stream := filepath.Join(b.TempDir(), "stream")
	syntheticSnapshot(b, stream, n, 1)
	s, err := Open(dir, Options{Config: withConfig(func(c *Config) { c.Sync = SyncNever })})
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(stream)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Import(context.Background(), f); err != nil {
		b.Fatal(err)
	}
	os.Remove(stream)
	return s
}

// BenchmarkCheckpoint times one checkpoint of 1M and 10M pairs (1 value
// per key) and reports MB/s and bytes per pair on disk.
func BenchmarkCheckpoint(b *testing.B) {
	for _, n := range []uint64{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("pairs=%d", n), func(b *testing.B) {
			s := importedStore(b, b.TempDir(), n)
			defer s.Close()
			var total time.Duration
			for i := 0; i < b.N; i++ {
				if err := s.Insert(benchKey(uint64(i)), w(1)); err != nil { // something new to cut
					b.Fatal(err)
				}
				start := time.Now()
				if err := s.Checkpoint(context.Background()); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
			c := s.Stats().Checkpoints
			sec := total.Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/checkpoint")
			b.ReportMetric(float64(c.LastBytes)/sec/1e6, "MB/s")
			b.ReportMetric(float64(c.LastBytes)/float64(c.LastPairs), "B/pair")
			b.ReportMetric(float64(c.LastStall.Microseconds()), "stall-µs")
		})
	}
}

// BenchmarkWriterLatencyDuringCheckpoint measures Insert latency of 64
// writers under SyncAlways on a store of 1M pairs, first alone, then while
// checkpoints run back to back, in the same run. Each phase starts right
// after a garbage collection and runs long enough (10s by default) to span
// collections of its own; gc-base and gc-ckpt report how many.
func BenchmarkWriterLatencyDuringCheckpoint(b *testing.B) {
	s := importedStore(b, b.TempDir(), 1_000_000)
	defer s.Close()
	// CIDSTORE_BENCH_PHASE sets how long each phase runs (default 10s):
	// long enough for each to span several garbage collections, so that
	// both pay for collection in proportion to what they allocate.
	phaseLen := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("CIDSTORE_BENCH_PHASE")); err == nil && d > 0 {
		phaseLen = d
	}
	// CIDSTORE_BENCH_PACE overrides Config.CheckpointPace (bytes/s).
	pace, _ := strconv.ParseInt(os.Getenv("CIDSTORE_BENCH_PACE"), 10, 64)
	if err := s.UpdateConfig(func(c Config) Config {
		c.Sync = SyncAlways
		if pace > 0 {
			c.CheckpointPace = pace
		}
		return c
	}); err != nil {
		b.Fatal(err)
	}
	const writers = 64
	var next atomic.Uint64 // every phase inserts new keys
	next.Store(1 << 40)
	// gcCycles counts completed garbage collections.
	gcCycles := func() uint64 {
		m := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(m)
		return m[0].Value.Uint64()
	}
	phase := func(d time.Duration, during func(stop <-chan struct{})) []time.Duration {
		// Each phase starts right after a collection, as each benchmark
		// does: back to back, the collection that the first phase's
		// allocation makes due would otherwise fall into the second.
		runtime.GC()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		lat := make([][]time.Duration, writers)
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := next.Add(1)
					t0 := time.Now()
					if err := s.Insert(benchKey(i), w(2)); err != nil {
						b.Error(err)
						return
					}
					lat[g] = append(lat[g], time.Since(t0))
				}
			}(g)
		}
		done := make(chan struct{})
		go func() { defer close(done); during(stop) }()
		timer := time.NewTimer(d)
		<-timer.C
		close(stop)
		wg.Wait()
		<-done
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		slices.Sort(all)
		return all
	}
	idle := func(<-chan struct{}) {}
	checkpoints := func(stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Checkpoint(context.Background()); err != nil {
				b.Error(err)
				return
			}
		}
	}
	if os.Getenv("CIDSTORE_BENCH_EXPORT") != "" { // isolate CPU from disk
		checkpoints = func(stop <-chan struct{}) {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Export(context.Background(), io.Discard); err != nil {
					b.Error(err)
					return
				}
			}
		}
	}
	sched := func() *metrics.Float64Histogram {
		m := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
		metrics.Read(m)
		return m[0].Value.Float64Histogram()
	}
	for i := 0; i < b.N; i++ {
		s0, g0 := sched(), gcCycles()
		base := phase(phaseLen, idle)
		s1, g1 := sched(), gcCycles()
		during := phase(phaseLen, checkpoints)
		s2, g2 := sched(), gcCycles()
		// runtime.GC at the start of each phase is one cycle of it.
		b.ReportMetric(float64(g1-g0-1), "gc-base")
		b.ReportMetric(float64(g2-g1-1), "gc-ckpt")
		b.ReportMetric(histP99(s0, s1)*1e6, "sched-p99-base-µs")
		b.ReportMetric(histP99(s1, s2)*1e6, "sched-p99-ckpt-µs")
		for _, q := range []struct {
			name string
			p    float64
		}{{"p50", 0.50}, {"p99", 0.99}, {"p99.9", 0.999}} {
			bq, dq := pct(base, q.p), pct(during, q.p)
			b.ReportMetric(float64(bq.Microseconds()), q.name+"-base-µs")
			b.ReportMetric(float64(dq.Microseconds()), q.name+"-ckpt-µs")
			b.ReportMetric(float64(dq)/float64(bq), q.name+"-ratio")
		}
		b.ReportMetric(float64(len(base))/phaseLen.Seconds(), "base-ops/s")
		b.ReportMetric(float64(len(during))/phaseLen.Seconds(), "ckpt-ops/s")
		b.ReportMetric(float64(s.Stats().Checkpoints.Count), "checkpoints")
	}
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// BenchmarkRecovery times Open of a store holding a snapshot of 10M pairs
// plus 1M WAL records after it. Without CIDSTORE_BENCH_RECOVERY_DIR the
// process that builds the directory opens it; with it, once the directory
// exists, every run opens it in a fresh process, as a restart does (with
// the files in the page cache).
func BenchmarkRecovery(b *testing.B) {
	const snapPairs, walRecords = 10_000_000, 1_000_000
	dir := b.TempDir()
	// CIDSTORE_BENCH_RECOVERY_DIR keeps the directory between runs, so
	// that experiments on recovery need not rebuild it each time.
	if keep := os.Getenv("CIDSTORE_BENCH_RECOVERY_DIR"); keep != "" {
		dir = keep
	}
	if _, err := os.Stat(Layout{dir}.Lock()); err != nil {
		buildRecoveryDir(b, dir, snapPairs, walRecords)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchOpen(b, dir, snapPairs+walRecords, "pairs/s", func(r *Store) bool {
			rec := r.Stats().Recovery
			return rec.SnapshotPairs == snapPairs && rec.Records == walRecords
		})
	}
}

// buildRecoveryDir fills dir with a snapshot of snapPairs pairs and
// walRecords single-insert WAL records after it.
func buildRecoveryDir(b *testing.B, dir string, snapPairs, walRecords uint64) {
	s := importedStore(b, dir, snapPairs)
	var next atomic.Uint64
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= walRecords; i = next.Add(1) {
				if err := s.Insert(benchKey(i+1<<50), w(3)); err != nil {
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

// histP99 is the 99th percentile of the samples added to a cumulative
// runtime histogram between a and b.
func histP99(a, b *metrics.Float64Histogram) float64 {
	var total uint64
	for i := range b.Counts {
		total += b.Counts[i] - a.Counts[i]
	}
	var seen uint64
	for i := range b.Counts {
		if seen += b.Counts[i] - a.Counts[i]; float64(seen) >= 0.99*float64(total) {
			return b.Buckets[i+1]
		}
	}
	return 0
}
