package triples

import (
	"runtime"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory inserts 1M random triples (every component distinct)
// into a Set of 64 shards, in batches of 1000, and says where the Go heap
// went, per triple: the records (the shared 96-byte triples and any multi
// records), the xsync map entries (16 bytes per key), the maps' bucket
// tables (64 bytes per bucket, counted from xsync's statistics), and the
// rest, which is the SPO B-trees' nodes and the small fixed overheads.
//
//	go test ./triples -run '^$' -bench Memory -benchtime 1x
func BenchmarkMemory(b *testing.B) {
	const n = 1_000_000
	ts := make([]Op, n)
	for i := range ts {
		u := uint64(i)
		ts[i] = Op{Triple: Triple{S: cid.FromWords(u+1, 1, 2, 3), P: cid.FromWords(u+1, 4, 5, 6), O: cid.FromWords(u+1, 7, 8, 9)}}
	}
	for b.Loop() {
		before := heapAlloc()
		s, _ := New(Options{Shards: 64, Seed: 1})
		for i := 0; i < n; i += 1000 {
			apply(s, ts[i:i+1000])
		}
		heap := float64(heapAlloc() - before)
		records := map[*Triple]bool{}
		var recBytes, entries, buckets float64
		for _, o := range Orders {
			for _, sh := range s.idx[o] {
				sh.records(func(r *Triple) bool {
					if o.isMulti(r) {
						recBytes += 96 + 48 + float64(64*o.count(r))
					} else if !records[r] {
						records[r] = true
						recBytes += 96
					}
					return true
				})
				st := sh.m.Stats()
				entries += float64(16 * st.Size)
				buckets += float64(64 * st.TotalBuckets)
			}
		}
		b.ReportMetric(heap/n, "heapB/triple")
		b.ReportMetric(recBytes/n, "recordB/triple")
		b.ReportMetric(entries/n, "entryB/triple")
		b.ReportMetric(buckets/n, "bucketB/triple")
		b.ReportMetric((heap-recBytes-entries-buckets)/n, "restB/triple")
		runtime.KeepAlive(s)
	}
}
