package store

import (
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"testing"

	"github.com/cidstore/cidstore/internal/sparsefile"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
)

// Open sizes its memory from what a snapshot validates and holds, not
// from the file's apparent size: a sparse gigabyte of junk named like a
// snapshot, and a sparse file with a valid header and footer whose blocks
// are holes, each cost Open less than openMemBound bytes of allocation
// (runtime.MemStats.TotalAlloc, an upper bound on the heap it can add)
// on top of a store holding one pair.
func TestOpenSparseSnapshotMemory(t *testing.T) {
	const (
		sparseSize   = 1 << 30
		openMemBound = 64 << 20
	)
	for name, craft := range map[string]func(path string){
		"junk": func(path string) {
			if err := sparsefile.Write(path, sparseSize, map[int64][]byte{0: []byte("JUNKJUNK")}); err != nil {
				t.Fatal(err)
			}
		},
		"hollow blocks": func(path string) { hollowSnapshot(t, path, 1, sparseSize) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openDir(t, dir, Options{})
			if err := s.Insert(w(1), w(2)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			craft(Layout{dir}.Snapshot(1))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := Open(dir, Options{})
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > openMemBound {
				t.Errorf("Open allocated %d MiB, more than %d MiB", n>>20, openMemBound>>20)
			} else {
				t.Logf("Open allocated %d KiB: %v", n>>10, err)
			}
			if err == nil {
				if !s.Contains(w(1), w(2)) {
					t.Error("the pair in the WAL is lost")
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// hollowSnapshot writes a snapshot of about size bytes with cut lsn whose
// header, footer and trailer are valid and whose block index tiles the
// file with blocks of the largest size, claiming as many pairs as they
// could hold; the blocks themselves are holes. The layout is the one
// package snapshot documents.
func hollowSnapshot(t *testing.T, path string, lsn uint64, size int64) {
	t.Helper()
	le := binary.LittleEndian
	tab := crc32.MakeTable(crc32.Castagnoli)
	const blockHeader, maxBlock = 28, snapshot.MaxBlockSize
	blocks := uint64(size / (blockHeader + maxBlock))
	hdr := make([]byte, snapshot.HeaderSize)
	copy(hdr, snapshot.Magic)
	le.PutUint16(hdr[8:], snapshot.Version)
	le.PutUint32(hdr[12:], 1) // one partition
	le.PutUint64(hdr[16:], lsn)
	le.PutUint32(hdr[32:], crc32.Checksum(hdr[:32], tab))
	raw := blocks * maxBlock
	footer := make([]byte, snapshot.FooterFixedSize)
	footer[0] = 'F'
	le.PutUint64(footer[8:], raw/64)  // keys
	le.PutUint64(footer[16:], raw/64) // pairs
	le.PutUint64(footer[24:], blocks)
	le.PutUint64(footer[32:], raw)
	off := uint64(snapshot.HeaderSize)
	for i := range blocks {
		e := make([]byte, snapshot.IndexEntrySize)
		le.PutUint64(e[0:], off)
		le.PutUint32(e[8:], maxBlock)
		le.PutUint64(e[44:], i+1) // first keys ascend
		footer = append(footer, e...)
		off += blockHeader + maxBlock
	}
	trailer := make([]byte, snapshot.TrailerSize)
	le.PutUint64(trailer[0:], off)
	le.PutUint64(trailer[8:], uint64(len(footer)))
	c := crc32.Update(crc32.Checksum(footer, tab), tab, trailer[:16])
	le.PutUint32(trailer[16:], c)
	copy(trailer[24:], snapshot.Magic)
	err := sparsefile.Write(path, int64(off)+int64(len(footer))+snapshot.TrailerSize,
		map[int64][]byte{0: hdr, int64(off): append(footer, trailer...)})
	if err != nil {
		t.Fatal(err)
	}
	if _, sum, err := snapshot.ReadFooter(vfs.Default, path); err != nil || sum.Pairs != int64(raw/64) {
		t.Fatalf("crafted footer does not validate: %v %+v", err, sum)
	}
}
