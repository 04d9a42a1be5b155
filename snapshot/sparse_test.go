package snapshot

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/internal/fuzztest"
	"github.com/cidstore/cidstore/internal/sparsefile"
	"github.com/cidstore/cidstore/vfs"
)

// Reading a snapshot costs memory bounded by its validated content, not by
// its apparent size: sparse files of sparseSize bytes whose header, trailer
// or footer make promises their content does not keep are read within
// memBound bytes of allocation (runtime.MemStats.TotalAlloc, an upper
// bound on the heap they can add). The files are sparse: they cost no disk
// space.
const (
	sparseSize = 1 << 30
	memBound   = 16 << 20
)

// hostileSnapshots writes sparse snapshot files into dir and returns
// their paths by name, with whether ReadFooter accepts each.
func hostileSnapshots(t *testing.T, dir string) map[string]bool {
	t.Helper()
	hdr := appendHeader(nil, Header{LSN: 1, Parts: 1, Created: time.Unix(1, 0)})
	files := map[string]bool{}
	add := func(name string, footerOK bool, size int64, chunks map[int64][]byte) {
		chunks[0] = append(chunks[0], hdr...)
		if err := sparsefile.Write(filepath.Join(dir, name), size, chunks); err != nil {
			t.Fatal(err)
		}
		files[name] = footerOK
	}

	// The trailer claims a footer from just after the header to the end:
	// gigabytes of zeros where the footer should be.
	size := int64(sparseSize)
	for (size-HeaderSize-TrailerSize-FooterFixedSize)%IndexEntrySize != 0 {
		size++
	}
	flen := uint64(size - HeaderSize - TrailerSize)
	add("huge-footer.snap", false, size, map[int64][]byte{
		size - TrailerSize: appendTrailer(nil, HeaderSize, flen, 0),
	})

	// The same, with a valid fixed footer part before the zeros.
	nblocks := (flen - FooterFixedSize) / IndexEntrySize
	fixed := appendFooterFixed(nil, totals{blocks: nblocks})
	add("huge-index.snap", false, size, map[int64][]byte{
		HeaderSize:         fixed,
		size - TrailerSize: appendTrailer(nil, HeaderSize, flen, crc(fixed)),
	})

	// A footer with a valid checksum whose index tiles the file with
	// blocks of the largest size, which are all holes.
	const blocks = sparseSize / (BlockHeaderSize + MaxBlockSize)
	tot := totals{keys: 1, pairs: 1, blocks: blocks, raw: blocks * MaxBlockSize}
	footer := appendFooterFixed(nil, tot)
	off := uint64(HeaderSize)
	for i := range blocks {
		footer = appendIndexEntry(footer, indexEntry{offset: off, stored: MaxBlockSize, first: cid.CID{31: byte(i + 1), 30: byte(i >> 8)}})
		off += BlockHeaderSize + MaxBlockSize
	}
	size = int64(off) + int64(len(footer)) + TrailerSize
	add("hollow-blocks.snap", true, size, map[int64][]byte{
		int64(off): appendTrailer(footer, off, uint64(len(footer)), crc(footer)),
	})
	return files
}

func TestSparseSnapshotMemory(t *testing.T) {
	dir := t.TempDir()
	for name, footerOK := range hostileSnapshots(t, dir) {
		path := filepath.Join(dir, name)
		check := func(op string, wantErr bool, fn func() error) {
			t.Helper()
			var err error
			n := fuzztest.Allocated(func() { err = fn() })
			if wantErr != errors.Is(err, ErrCorrupt) || (!wantErr && err != nil) {
				t.Errorf("%s %s: %v, want corrupt %v", op, name, err, wantErr)
			}
			if n > memBound {
				t.Errorf("%s %s allocated %d MiB, more than %d MiB", op, name, n>>20, memBound>>20)
			}
			t.Logf("%s %s: allocated %d KiB: %v", op, name, n>>10, err)
		}
		check("ReadHeader", false, func() error { _, err := ReadHeader(vfs.Default, path); return err })
		check("ReadFooter", !footerOK, func() error { _, _, err := ReadFooter(vfs.Default, path); return err })
		check("VerifyFile", true, func() error { _, _, err := VerifyFile(vfs.Default, path); return err })
	}
}
