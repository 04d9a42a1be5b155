package store

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
)

// BenchmarkWorkers measures Get and Insert throughput on a durable store
// (SyncNever, so the disk does not dominate) with every maintenance worker
// off, then with all of them running at aggressive intervals under the
// default WorkerDuty, in one run:
//
//	go test ./store -run '^$' -bench Workers -benchtime 3s -count 3
func BenchmarkWorkers(b *testing.B) {
	off := DefaultConfig()
	off.Sync = SyncNever
	off.CheckpointWALBytes, off.CheckpointInterval = 0, 0
	off.CompactInterval, off.AuditInterval, off.ScrubInterval, off.GCInterval = 0, 0, 0, 0
	busy := DefaultConfig()
	busy.Sync = SyncNever
	busy.CheckpointWALBytes, busy.CheckpointInterval = 1<<20, time.Second
	busy.CompactInterval, busy.AuditInterval, busy.ScrubInterval, busy.GCInterval =
		10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
	for _, mode := range []struct {
		name string
		cfg  Config
	}{{"workers=none", off}, {"workers=all", busy}} {
		for _, op := range []string{"get", "insert"} {
			b.Run(mode.name+"/"+op, func(b *testing.B) {
				cfg := mode.cfg
				s, err := Open(b.TempDir(), Options{Config: &cfg, SegmentSize: 1 << 20})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				const preload = 200_000
				pairs := make([]Pair, 1000)
				for base := uint64(0); base < preload; base += 1000 {
					for j := range pairs {
						pairs[j] = Pair{benchKey(base + uint64(j)), benchKey(base + uint64(j) + 1<<40)}
					}
					if err := s.InsertBatch(pairs); err != nil {
						b.Fatal(err)
					}
				}
				var next atomic.Uint64
				next.Store(1 << 50)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := nextWorker()
					buf := make([]cid.CID, 0, 8)
					for pb.Next() {
						if op == "get" {
							buf = s.AppendValues(buf[:0], benchKey(i%preload))
							i++
							continue
						}
						k := next.Add(1)
						if err := s.Insert(benchKey(k), w(1)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				var runs int64
				var paused time.Duration
				for _, ws := range s.Stats().Workers {
					runs += ws.Runs
					paused += ws.Paused
				}
				b.ReportMetric(float64(runs), "worker-runs")
				b.ReportMetric(paused.Seconds(), "worker-paused-s")
			})
		}
	}
}
