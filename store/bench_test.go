package store

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/puzpuzpuz/xsync/v3"
)

// Benchmarks compare the store at several shard counts with a raw
// xsync.MapOf doing the same key/value work in the same run. Run with
//
//	go test ./store -run '^$' -bench . -cpu 1,2 -count 6 | tee new.txt
//	benchstat old.txt new.txt

var benchShards = []int{1, 4, 16, 32, 64, 128, 256, 0}

const benchPreload = 1 << 18

func shardName(n int) string {
	if n == 0 {
		return fmt.Sprintf("shards=default(%d)", DefaultShards())
	}
	return fmt.Sprintf("shards=%d", n)
}

func loadedStore(b *testing.B, shards int, n int) *Store {
	b.Helper()
	s, err := Open("", Options{InMemory: true, Shards: shards})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := 0; i < n; i++ {
		if err := s.Insert(benchKey(uint64(i)), benchKey(uint64(i)+1<<40)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func loadedRaw(n int) *xsync.MapOf[cid.CID, []cid.CID] {
	m := xsync.NewMapOf[cid.CID, []cid.CID]()
	for i := 0; i < n; i++ {
		m.Store(benchKey(uint64(i)), []cid.CID{benchKey(uint64(i) + 1<<40)})
	}
	return m
}

func BenchmarkGetHit(b *testing.B) {
	b.Run("raw-xsync", func(b *testing.B) {
		m := loadedRaw(benchPreload)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := nextWorker()
			n := 0
			for pb.Next() {
				vs, _ := m.Load(benchKey(i % benchPreload))
				n += len(vs)
				i++
			}
			_ = n
		})
	})
	for _, sh := range benchShards {
		s := loadedStore(b, sh, benchPreload)
		b.Run(shardName(sh)+"/append", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := nextWorker()
				buf := make([]cid.CID, 0, 8)
				for pb.Next() {
					buf = s.AppendValues(buf[:0], benchKey(i%benchPreload))
					i++
				}
			})
		})
		b.Run(shardName(sh)+"/contains", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := nextWorker()
				for pb.Next() {
					k := i % benchPreload
					s.Contains(benchKey(k), benchKey(k+1<<40))
					i++
				}
			})
		})
		b.Run(shardName(sh)+"/get", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := nextWorker()
				for pb.Next() {
					_ = s.Get(benchKey(i % benchPreload))
					i++
				}
			})
		})
	}
}

func BenchmarkGetMiss(b *testing.B) {
	b.Run("raw-xsync", func(b *testing.B) {
		m := loadedRaw(benchPreload)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := nextWorker()
			for pb.Next() {
				m.Load(benchKey(i + 1<<50))
				i++
			}
		})
	})
	for _, sh := range benchShards {
		s := loadedStore(b, sh, benchPreload)
		b.Run(shardName(sh), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := nextWorker()
				buf := make([]cid.CID, 0, 8)
				for pb.Next() {
					buf = s.AppendValues(buf[:0], benchKey(i+1<<50))
					i++
				}
			})
		})
	}
}

// BenchmarkInsertNew inserts a new key per op into a store that grows
// with b.N, like the raw map baseline.
func BenchmarkInsertNew(b *testing.B) {
	b.Run("raw-xsync", func(b *testing.B) {
		m := xsync.NewMapOf[cid.CID, []cid.CID]()
		var next atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1)
				m.Store(benchKey(i), []cid.CID{benchKey(i + 1<<40)})
			}
		})
	})
	for _, sh := range benchShards {
		b.Run(shardName(sh), func(b *testing.B) {
			s := loadedStore(b, sh, 0)
			var next atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					if err := s.Insert(benchKey(i), benchKey(i+1<<40)); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkInsertDuplicate(b *testing.B) {
	for _, sh := range benchShards {
		s := loadedStore(b, sh, benchPreload)
		b.Run(shardName(sh), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := nextWorker()
				for pb.Next() {
					k := i % benchPreload
					if err := s.Insert(benchKey(k), benchKey(k+1<<40)); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}

func BenchmarkDelete(b *testing.B) {
	for _, sh := range benchShards {
		b.Run(shardName(sh), func(b *testing.B) {
			s := loadedStore(b, sh, b.N)
			var next atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					if err := s.Delete(benchKey(i), benchKey(i+1<<40)); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkMixed90 is 90% reads (hits) and 10% inserts of a second value
// to an existing key.
func BenchmarkMixed90(b *testing.B) {
	b.Run("raw-xsync", func(b *testing.B) {
		m := loadedRaw(benchPreload)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := nextWorker()
			for pb.Next() {
				k := benchKey(i % benchPreload)
				if i%10 == 0 {
					m.Compute(k, func(old []cid.CID, _ bool) ([]cid.CID, bool) {
						return append(old[:len(old):len(old)], benchKey(i)), false
					})
				} else {
					m.Load(k)
				}
				i++
			}
		})
	})
	for _, sh := range benchShards {
		b.Run(shardName(sh), func(b *testing.B) {
			s := loadedStore(b, sh, benchPreload)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := nextWorker()
				buf := make([]cid.CID, 0, 64)
				for pb.Next() {
					k := benchKey(i % benchPreload)
					if i%10 == 0 {
						if err := s.Insert(k, benchKey(i)); err != nil {
							b.Fatal(err)
						}
					} else {
						buf = s.AppendValues(buf[:0], k)
					}
					i++
				}
			})
		})
	}
}

// BenchmarkMemory reports heap bytes per pair after loading a store; it
// measures, it does not assert.
func BenchmarkMemory(b *testing.B) {
	for _, shape := range []struct{ keys, vals int }{{1_000_000, 1}, {100_000, 10}} {
		b.Run(fmt.Sprintf("keys=%d/values=%d", shape.keys, shape.vals), func(b *testing.B) {
			for b.Loop() {
				before := heapInUse()
				s, err := Open("", Options{InMemory: true})
				if err != nil {
					b.Fatal(err)
				}
				pairs := make([]Pair, 0, shape.vals)
				for k := 0; k < shape.keys; k++ {
					pairs = pairs[:0]
					for v := 0; v < shape.vals; v++ {
						pairs = append(pairs, Pair{benchKey(uint64(k)), benchKey(uint64(k*shape.vals+v) + 1<<40)})
					}
					if err := s.InsertBatch(pairs); err != nil {
						b.Fatal(err)
					}
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/float64(s.Pairs()), "heapB/pair")
				runtime.KeepAlive(s)
				s.Close()
			}
		})
	}
}
