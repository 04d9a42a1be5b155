package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// frameEnds returns the end offsets of the records in a segment file.
func frameEnds(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(b[SegmentHeaderSize:]))
	var ends []int64
	for {
		if _, err := r.Next(); err != nil {
			break
		}
		ends = append(ends, SegmentHeaderSize+r.Offset())
	}
	return ends
}

// makeLog writes records 1..k to a new log in dir and closes it.
func makeLog(t *testing.T, dir string, k int, segSize int64) {
	t.Helper()
	l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize})
	writeRecords(t, l, 1, k)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestExhaustiveTruncation(t *testing.T) {
	tests := []struct {
		name    string
		k       int
		segSize int64
	}{
		{"single segment", 10, 0},
		{"three segments", 12, MinSegmentSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.segSize != 0 {
				bigRecords(t)
			}
			src := filepath.Join(t.TempDir(), "src")
			makeLog(t, src, tc.k, tc.segSize)
			segs := segmentFiles(t, src)
			lastPath := segs[len(segs)-1]
			first, _ := parseSegmentName(filepath.Base(lastPath))
			ends := frameEnds(t, lastPath)
			if int(first)-1+len(ends) != tc.k {
				t.Fatalf("last segment starts at %d with %d records", first, len(ends))
			}
			full, err := os.ReadFile(lastPath)
			if err != nil {
				t.Fatal(err)
			}
			for cut := 0; cut <= len(full); cut++ {
				if !nearAny(int64(cut), ends) && cut%31 != 0 {
					continue // inside a big payload, every 31st byte will do
				}
				dir := filepath.Join(t.TempDir(), "c")
				copyDir(t, src, dir)
				p := filepath.Join(dir, filepath.Base(lastPath))
				if err := os.Truncate(p, int64(cut)); err != nil {
					t.Fatal(err)
				}
				want := int(first) - 1
				keepEnd := int64(SegmentHeaderSize)
				for _, e := range ends {
					if e <= int64(cut) {
						want++
						keepEnd = e
					}
				}
				l, err := Open(Options{Dir: dir, SegmentSize: tc.segSize})
				if err != nil {
					t.Fatalf("cut %d: Open: %v", cut, err)
				}
				checkRecords(t, replayAll(t, l, 1), 1, want)
				if cut >= SegmentHeaderSize {
					if got := l.Stats().TornBytesDropped; got != int64(cut)-keepEnd {
						t.Fatalf("cut %d: TornBytesDropped %d want %d", cut, got, int64(cut)-keepEnd)
					}
				}
				// The log continues after the cut.
				writeRecords(t, l, want+1, 2)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = mustOpen(t, Options{Dir: dir, SegmentSize: tc.segSize})
				checkRecords(t, replayAll(t, l, 1), 1, want+2)
				if st := l.Stats(); st.TornBytesDropped != 0 {
					t.Fatalf("cut %d: second open dropped %d bytes", cut, st.TornBytesDropped)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestBitFlip(t *testing.T) {
	const k = 8
	src := filepath.Join(t.TempDir(), "src")
	makeLog(t, src, k, 0)
	path := segmentFiles(t, src)[0]
	ends := frameEnds(t, path)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for j := 1; j <= k; j++ { // record j
		start := int64(SegmentHeaderSize)
		if j > 1 {
			start = ends[j-2]
		}
		for off := start; off < ends[j-1]; off++ {
			dir := filepath.Join(t.TempDir(), "c")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, filepath.Base(path))
			b := bytes.Clone(orig)
			b[off] ^= 1 << (off % 8)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(Options{Dir: dir})
			if j == k {
				// The last record of the last segment: a torn tail.
				if err != nil {
					t.Fatalf("flip in last record at %d: %v", off, err)
				}
				checkRecords(t, replayAll(t, l, 1), 1, k-1)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip in record %d at %d: got %v", j, off, err)
			}
			if ce.Offset != start || ce.File != p || ce.LSN != uint64(j) {
				t.Fatalf("flip in record %d at %d: %+v, want offset %d", j, off, ce, start)
			}
			// Only check repair for a sample of positions; it is the
			// same code path for all of them.
			if off%5 != 0 {
				continue
			}
			l = mustOpen(t, Options{Dir: dir, Repair: true})
			checkRecords(t, replayAll(t, l, 1), 1, j-1)
			st := l.Stats()
			if st.RepairedBytesDropped != int64(len(orig))-start || st.RepairedRecordsDropped != int64(k-j) {
				t.Fatalf("repair at record %d: dropped %d bytes %d records", j, st.RepairedBytesDropped, st.RepairedRecordsDropped)
			}
			writeRecords(t, l, j, 1)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestCorruptionInOlderSegment(t *testing.T) {
	bigRecords(t)
	src := filepath.Join(t.TempDir(), "src")
	makeLog(t, src, 12, MinSegmentSize)
	segs := segmentFiles(t, src)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	mid := segs[1]
	midFirst, _ := parseSegmentName(filepath.Base(mid))
	midEnds := frameEnds(t, mid)
	nextFirst, _ := parseSegmentName(filepath.Base(segs[2]))
	midLast := len(midEnds) - 1

	type damage func(t *testing.T, dir string) (file string, offset int64, keep int)
	tests := []struct {
		name   string
		damage damage
	}{
		{"last record of older segment flipped", func(t *testing.T, dir string) (string, int64, int) {
			p := filepath.Join(dir, filepath.Base(mid))
			flipByte(t, p, midEnds[midLast]-1)
			start := midEnds[midLast-1]
			return p, start, int(midFirst) + midLast - 1
		}},
		{"older segment truncated mid-record", func(t *testing.T, dir string) (string, int64, int) {
			p := filepath.Join(dir, filepath.Base(mid))
			if err := os.Truncate(p, midEnds[midLast]-3); err != nil {
				t.Fatal(err)
			}
			return p, midEnds[midLast-1], int(midFirst) + midLast - 1
		}},
		{"bad header", func(t *testing.T, dir string) (string, int64, int) {
			p := filepath.Join(dir, filepath.Base(mid))
			flipByte(t, p, 2)
			return p, 0, int(midFirst) - 1
		}},
		{"missing segment", func(t *testing.T, dir string) (string, int64, int) {
			if err := os.Remove(filepath.Join(dir, filepath.Base(mid))); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, filepath.Base(segs[2])), 0, int(midFirst) - 1
		}},
		{"lsn gap inside segment", func(t *testing.T, dir string) (string, int64, int) {
			// Rewrite the middle segment with its second record's LSN
			// bumped but a valid checksum.
			p := filepath.Join(dir, filepath.Base(mid))
			b := append([]byte(nil), segmentHeader[:]...)
			for i := int(midFirst); i < int(nextFirst); i++ {
				lsn := uint64(i)
				if i == int(midFirst)+1 {
					lsn += 100
				}
				b = AppendRecord(b, lsn, typeFor(i), payloadFor(i))
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p, midEnds[0], int(midFirst)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "c")
			copyDir(t, src, dir)
			file, offset, keep := tc.damage(t, dir)
			_, err := Open(Options{Dir: dir, SegmentSize: MinSegmentSize})
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open: %v", err)
			}
			if ce.File != file || ce.Offset != offset {
				t.Fatalf("CorruptError %v, want %s offset %d", ce, file, offset)
			}
			rep, err := Repair(nil, dir, RepairOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Truncated || rep.LastLSN != uint64(keep) || rep.File != file || rep.Offset != offset {
				t.Fatalf("report %+v, want cut at %s:%d keeping %d", rep, file, offset, keep)
			}
			if len(rep.MovedAside) == 0 || rep.BytesDropped == 0 || rep.RecordsDropped == 0 {
				t.Fatalf("report %+v", rep)
			}
			l := mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
			checkRecords(t, replayAll(t, l, 1), 1, keep)
			writeRecords(t, l, keep+1, 3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
			checkRecords(t, replayAll(t, l, 1), 1, keep+3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReplayDetectsCorruption(t *testing.T) {
	bigRecords(t)
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
	defer l.Close()
	writeRecords(t, l, 1, 12)
	segs := segmentFiles(t, dir)
	ends := frameEnds(t, segs[0])
	flipByte(t, segs[0], ends[0]-1)
	err := l.Replay(1, func(uint64, uint8, []byte) error { return nil })
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != segs[0] || ce.Offset != SegmentHeaderSize {
		t.Fatalf("Replay: %v", err)
	}
	stop := errors.New("stop")
	if err := l.Replay(1, func(uint64, uint8, []byte) error { return stop }); err != stop && !errors.As(err, &ce) {
		t.Fatalf("Replay: %v", err)
	}
}

func TestRepairCleanLog(t *testing.T) {
	dir := t.TempDir()
	makeLog(t, dir, 5, 0)
	rep, err := Repair(nil, dir, RepairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Truncated || rep.LastLSN != 5 || rep.TornBytes != 0 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := Repair(nil, filepath.Join(dir, "missing"), RepairOptions{}); err == nil {
		t.Fatal("Repair of missing dir succeeded")
	}
}

// nearAny reports whether off lies within HeaderSize+2 bytes of the
// segment header's end or of one of the frame ends, where truncation
// cuts headers and payloads in every way that matters.
func nearAny(off int64, ends []int64) bool {
	for _, e := range append([]int64{SegmentHeaderSize}, ends...) {
		if off >= e-HeaderSize-2 && off <= e+HeaderSize+2 {
			return true
		}
	}
	return false
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
