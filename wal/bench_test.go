package wal

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendWaitAlways measures group commit: N goroutines each
// Append an 80-byte record and WaitDurable under SyncAlways. ns/op is per
// acknowledged record; fsyncs/op shows how many records share an fsync.
func BenchmarkAppendWaitAlways(b *testing.B) {
	payload := make([]byte, 80)
	for _, n := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) {
			l := mustOpen(b, Options{Dir: b.TempDir(), Sync: SyncAlways})
			// Warm up buffers outside the measurement.
			writeRecords(b, l, 1, 1000)
			before := l.Stats()
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			start := time.Now()
			b.ResetTimer()
			op := func() {
				lsn, err := l.Append(1, payload)
				if err != nil {
					b.Error(err)
					return
				}
				if err := l.WaitDurable(lsn); err != nil {
					b.Error(err)
				}
			}
			procs := runtime.GOMAXPROCS(0)
			if n%procs == 0 {
				b.SetParallelism(n / procs)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						op()
					}
				})
			} else {
				// Fewer writers than Ps: RunParallel cannot go below
				// GOMAXPROCS goroutines, so share b.N explicitly.
				var wg sync.WaitGroup
				for w := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w; i < b.N; i += n {
							op()
						}
					}()
				}
				wg.Wait()
			}
			b.StopTimer()
			elapsed := time.Since(start)
			after := l.Stats()
			b.ReportMetric(float64(after.Fsyncs-before.Fsyncs)/float64(b.N), "fsyncs/op")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
