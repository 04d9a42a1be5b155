package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cidstore/cidstore/internal/fuzztest"
	"github.com/cidstore/cidstore/internal/sparsefile"
)

// Reading a damaged segment costs memory bounded by a constant, not by the
// segment's size: sparse segments of sparseSize bytes, whose damage makes
// the reader look past it (a torn tail, corruption, a huge frame, a bad
// header), are verified, opened and repaired within memBound bytes of
// allocation in all (runtime.MemStats.TotalAlloc, an upper bound on the
// heap they can add). The files are sparse: they cost no disk space.
const (
	sparseSize = 64 << 20
	memBound   = 16 << 20
)

func TestSparseSegmentMemory(t *testing.T) {
	rec1 := AppendRecord(nil, 1, 1, []byte("the first record"))
	rec2 := AppendRecord(nil, 2, 1, []byte("the second record, after the damage"))
	junk := []byte("not a frame, just junk at the end")
	head := append(segmentHeader[:], rec1...)
	// A frame header claiming the largest payload, with a bad checksum.
	huge := AppendRecord(nil, 2, 1, nil)
	binary.LittleEndian.PutUint32(huge[4:], MaxPayload)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	used := int64(len(head))
	tests := []struct {
		name       string
		head, tail []byte
		corrupt    bool  // else torn (or clean)
		torn       int64 // bytes Open drops as a torn tail
	}{
		{"zeros then junk", head, junk, false, sparseSize - used},
		{"junk, zeros, a valid record", cat(head, junk), rec2, true, 0},
		{"huge frame, zeros, a valid record", cat(head, huge), rec2, true, 0},
		{"huge frame, zeros, junk", cat(head, huge), junk, false, sparseSize - used},
		{"bad header", []byte("JUNKJUNK"), junk, true, 0},
		{"zero header", []byte{0}, []byte{0}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(op string, fn func()) {
				t.Helper()
				n := fuzztest.Allocated(fn)
				if n > memBound {
					t.Errorf("%s of a %d MiB sparse segment allocated %d MiB, more than %d MiB",
						op, sparseSize>>20, n>>20, memBound>>20)
				}
				t.Logf("%s allocated %d KiB", op, n>>10)
			}
			dir := t.TempDir()
			chunks := map[int64][]byte{0: tc.head, sparseSize - int64(len(tc.tail)): tc.tail}
			if err := sparsefile.Write(filepath.Join(dir, segmentName(1)), sparseSize, chunks); err != nil {
				t.Fatal(err)
			}
			check("Verify", func() {
				_, err := Verify(nil, dir, nil)
				if tc.corrupt != errors.Is(err, ErrCorrupt) || (!tc.corrupt && err != nil) {
					t.Errorf("Verify: %v, want corrupt %v", err, tc.corrupt)
				}
			})
			check("Open", func() {
				l, err := Open(Options{Dir: dir, NoPreallocate: true})
				if tc.corrupt {
					if !errors.Is(err, ErrCorrupt) {
						t.Errorf("Open: %v, want ErrCorrupt", err)
					}
					return
				}
				if err != nil {
					t.Errorf("Open: %v", err)
					return
				}
				if got := l.RepairReport().TornBytes; got != tc.torn {
					t.Errorf("torn bytes %d, want %d", got, tc.torn)
				}
				if err := l.Close(); err != nil {
					t.Error(err)
				}
			})
			if !tc.corrupt {
				return
			}
			check("Repair", func() {
				rep, err := Repair(nil, dir, RepairOptions{})
				if err != nil || !rep.Truncated {
					t.Errorf("Repair: %v, report %+v", err, rep)
				}
			})
		})
	}
}
