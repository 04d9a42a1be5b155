package wal

import (
	"fmt"
	"io"
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

// BenchmarkRecovery opens a log of 1M records of 64-byte payloads (four
// 64 MiB segments, preallocated like a store's) and reads every record
// back, as a store's recovery does, two ways in the same run: Recover
// hands out the records as the one pass that validates them reads them
// (what recovery does), and OpenReplay validates them in Open and reads
// them again with Replay (what it did before). A CheckRecord that looks at
// every payload stands in for the store's. ns/op is per open of the whole
// log; the files are in the page cache.
func BenchmarkRecovery(b *testing.B) {
	const records = 1_000_000
	dir := b.TempDir()
	l := mustOpen(b, Options{Dir: dir, Sync: SyncNever})
	payload := make([]byte, 64)
	for i := 1; i <= records; i++ {
		payload[0] = byte(i)
		if _, err := l.Append(1, payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	var sum int
	check := func(r Record) error { sum += int(r.Payload[0]); return nil }
	use := func(r Record) { sum += len(r.Payload) }
	opts := Options{Dir: dir, Sync: SyncNever, CheckRecord: check}
	finish := func(b *testing.B, l *Log, n int) {
		if n != records {
			b.Fatalf("read %d records, want %d", n, records)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("way=Recover", func(b *testing.B) {
		for b.Loop() {
			r, err := Recover(opts)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				rec, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				use(rec)
				n++
			}
			l, err := r.Finish()
			if err != nil {
				b.Fatal(err)
			}
			finish(b, l, n)
		}
		report(b)
	})
	b.Run("way=OpenReplay", func(b *testing.B) {
		for b.Loop() {
			l := mustOpen(b, opts)
			n := 0
			err := l.Replay(1, func(lsn uint64, typ uint8, p []byte) error {
				use(Record{LSN: lsn, Type: typ, Payload: p})
				n++
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			finish(b, l, n)
		}
		report(b)
	})
}
