package store

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cidstore/cidstore/wal"
)

// BenchmarkDurableInsert measures acknowledged inserts of new keys with 1,
// 16, 64 and 256 concurrent writers under each sync policy, with the
// in-memory store as the baseline in the same run. It reports fsyncs per
// acknowledged insert. Run with
//
//	go test ./store -run '^$' -bench 'Durable|BatchAlways' -benchtime 2s
func BenchmarkDurableInsert(b *testing.B) {
	policies := []struct {
		name string
		mem  bool
		mode SyncMode
	}{
		{"memory", true, 0},
		{"always", false, SyncAlways},
		{"interval", false, SyncInterval},
		{"never", false, SyncNever},
	}
	for _, writers := range []int{1, 16, 64, 256} {
		for _, p := range policies {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, p.name), func(b *testing.B) {
				dir := b.TempDir()
				if p.mem {
					dir = ""
				}
				s, err := Open(dir, Options{Config: withConfig(func(c *Config) { c.Sync = p.mode })})
				if err != nil {
					b.Fatal(err)
				}
				var next atomic.Uint64
				warmWAL(b, s, &next)
				// RunParallel starts parallelism x GOMAXPROCS goroutines.
				b.SetParallelism(max(1, writers/max(1, cpus())))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1)
						if err := s.Insert(benchKey(i), benchKey(i+1<<40)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				reportWAL(b, s, float64(b.N))
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkBatchAlways measures InsertBatch of 1000 new pairs (keys
// benchKey(i), sequential i, shuffled over the shards by the shard hash)
// from 1, 4 and 16 goroutines, in memory and under SyncAlways, each in a
// fresh store that grows with b.N; the metric is pairs/s. The in-memory
// store at the same goroutine count is the same-run baseline. Run with
//
//	go test ./store -run '^$' -bench BatchAlways -benchtime 2s
func BenchmarkBatchAlways(b *testing.B) {
	for _, writers := range []int{1, 4, 16} {
		for _, mem := range []bool{true, false} {
			name := "always"
			if mem {
				name = "memory"
			}
			b.Run(fmt.Sprintf("writers=%d/%s", writers, name), func(b *testing.B) {
				benchBatches(b, mem, writers)
			})
		}
	}
}

// benchBatches runs b.N batches of 1000 new pairs from writers goroutines.
func benchBatches(b *testing.B, mem bool, writers int) {
	// A fresh directory for every run: with -count > 1 a reused one would
	// already hold the keys, and the batches would be no-ops.
	dir := b.TempDir()
	if mem {
		dir = ""
	}
	s, err := Open(dir, Options{Config: withConfig(func(c *Config) { c.Sync = SyncAlways })})
	if err != nil {
		b.Fatal(err)
	}
	var next, done atomic.Uint64
	warmWAL(b, s, &next)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pairs := make([]Pair, 1000)
			for done.Add(1) <= uint64(b.N) {
				base := next.Add(1000)
				for j := range pairs {
					i := base + uint64(j)
					pairs[j] = Pair{benchKey(i), benchKey(i + 1<<40)}
				}
				if err := s.InsertBatch(pairs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "pairs/s")
	reportWAL(b, s, float64(b.N))
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// warmWAL inserts pairs into a persistent store until its log writes to a
// preallocated segment, the steady state of a store that has been running
// for a while, so that the measurement does not depend on how much of it
// falls before the log's first switch to one.
func warmWAL(b *testing.B, s *Store, next *atomic.Uint64) {
	if s.wal == nil {
		return
	}
	pairs := make([]Pair, 1000)
	for s.wal.Stats().PreallocatedSegments == 0 {
		if s.wal.Stats().WrittenBytes > 4*wal.DefaultSegmentSize {
			b.Fatal("the log did not switch to a preallocated segment")
		}
		base := next.Add(uint64(len(pairs)))
		for j := range pairs {
			i := base + uint64(j)
			pairs[j] = Pair{benchKey(i), benchKey(i + 1<<40)}
		}
		if err := s.InsertBatch(pairs); err != nil {
			b.Fatal(err)
		}
	}
}

func reportWAL(b *testing.B, s *Store, ops float64) {
	b.ReportMetric(ops/b.Elapsed().Seconds(), "acks/s")
	if s.wal != nil {
		b.ReportMetric(float64(s.wal.Stats().Fsyncs)/ops, "fsyncs/op")
	}
}

func cpus() int { return runtime.GOMAXPROCS(0) }
