package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/vfs"
)

// benchShapes are 1M random pairs over 8 partitions.
var benchShapes = []struct {
	name       string
	keys, vals int // per partition: keys, values per key
}{
	{"1Mkeys_x1", 1_000_000 / 8, 1},
	{"100Kkeys_x10", 100_000 / 8, 10},
}

var (
	benchMu   sync.Mutex
	benchData = make(map[string]dataset)
)

func benchDataset(name string, keys, vals int) dataset {
	benchMu.Lock()
	defer benchMu.Unlock()
	if d, ok := benchData[name]; ok {
		return d
	}
	d := genDataset(99, 8, keys, func(int) int { return vals }, false)
	benchData[name] = d
	return d
}

// countingWriter discards what it is given and counts it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func reportPairs(b *testing.B, sum Summary) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(sum.Pairs), "ns/pair")
	b.ReportMetric(float64(sum.Bytes)/float64(sum.Pairs), "B/pair")
}

// BenchmarkWrite encodes 1M pairs to memory (no I/O).
func BenchmarkWrite(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(sh.name, func(b *testing.B) {
			d := benchDataset(sh.name, sh.keys, sh.vals)
			parts := d.parts()
			var sum Summary
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				var err error
				sum, err = Write(context.Background(), &countingWriter{}, Header{}, parts)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(sum.Bytes)
			reportPairs(b, sum)
		})
	}
}

// BenchmarkWriteFile writes 1M pairs to a file, with fsync.
func BenchmarkWriteFile(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(sh.name, func(b *testing.B) {
			d := benchDataset(sh.name, sh.keys, sh.vals)
			parts := d.parts()
			path := filepath.Join(b.TempDir(), Name(1))
			var sum Summary
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				var err error
				sum, err = WriteFile(context.Background(), vfs.Default, path, Header{}, parts)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(sum.Bytes)
			reportPairs(b, sum)
		})
	}
}

// BenchmarkLoad loads a 1M-pair file (from the page cache) on GOMAXPROCS
// goroutines.
func BenchmarkLoad(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(sh.name, func(b *testing.B) {
			d := benchDataset(sh.name, sh.keys, sh.vals)
			path := filepath.Join(b.TempDir(), Name(1))
			if _, err := WriteFile(context.Background(), vfs.Default, path, Header{}, d.parts()); err != nil {
				b.Fatal(err)
			}
			var sum Summary
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				var err error
				_, sum, err = LoadFile(context.Background(), vfs.Default, path, 0, func(cid.CID, []cid.CID) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(sum.Bytes)
			reportPairs(b, sum)
		})
	}
}

// BenchmarkRead imports a 1M-pair snapshot from a stream in memory.
func BenchmarkRead(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(sh.name, func(b *testing.B) {
			d := benchDataset(sh.name, sh.keys, sh.vals)
			var buf bytes.Buffer
			if _, err := Write(context.Background(), &buf, Header{}, d.parts()); err != nil {
				b.Fatal(err)
			}
			var sum Summary
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				var err error
				_, sum, err = Read(context.Background(), bytes.NewReader(buf.Bytes()), func(cid.CID, []cid.CID) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(sum.Bytes)
			reportPairs(b, sum)
		})
	}
}

func ExampleName() {
	fmt.Println(Name(4711))
	lsn, ok := ParseName("00000000000000004711.snap")
	fmt.Println(lsn, ok)
	// Output:
	// 00000000000000004711.snap
	// 4711 true
}
