package wal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cidstore/cidstore/vfs"
)

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

// recoverAll reads every record a Recovery hands out.
func recoverAll(t *testing.T, r *Recovery) []testRec {
	t.Helper()
	var out []testRec
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, testRec{rec.LSN, rec.Type, bytes.Clone(rec.Payload)})
	}
}

// TestRecoverReadsOnce reads a log of several segments with a torn tail
// through Recover: Next hands out every record, reading the files once;
// Rewind starts again; Finish after part of the records reads the rest
// and opens a log that goes on after the last one; and with NoLock no
// lock is taken and LOCK is not created.
func TestRecoverReadsOnce(t *testing.T) {
	bigRecords(t)
	dir := t.TempDir()
	makeLog(t, dir, 30, MinSegmentSize)
	segs := segmentFiles(t, dir)
	last := segs[len(segs)-1]
	fi, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, fi.Size()-5); err != nil { // record 30 torn
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, lockName)); err != nil {
		t.Fatal(err)
	}
	cfs := &countingFS{FS: vfs.Default}
	r, err := Recover(Options{FS: cfs, Dir: dir, SegmentSize: MinSegmentSize, NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.FirstLSN() != 1 {
		t.Fatalf("FirstLSN %d", r.FirstLSN())
	}
	checkRecords(t, recoverAll(t, r), 1, 29)
	var size int64
	for _, p := range segmentFiles(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	// The torn tail is read a second time, to count it.
	if got := cfs.read.Load(); got > size+fi.Size() {
		t.Errorf("read %d bytes of %d bytes of segments", got, size)
	}
	if err := r.Rewind(); err != nil {
		t.Fatal(err)
	}
	got := recoverAll(t, r)[:0]
	if err := r.Rewind(); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, testRec{rec.LSN, rec.Type, bytes.Clone(rec.Payload)})
	}
	checkRecords(t, got, 1, 10)
	l, err := r.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Finish(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Finish: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close after Finish: %v", err)
	}
	if st := l.Stats(); st.LastLSN != 29 || st.TornBytesDropped == 0 {
		t.Errorf("LastLSN %d, TornBytesDropped %d", st.LastLSN, st.TornBytesDropped)
	}
	if _, err := os.Stat(filepath.Join(dir, lockName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NoLock created %s: %v", lockName, err)
	}
	writeRecords(t, l, 30, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
	checkRecords(t, replayAll(t, l, 1), 1, 32)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverCorrupt: damage ends the pass with the error Open gives, and
// Close then releases the lock.
func TestRecoverCorrupt(t *testing.T) {
	bigRecords(t)
	dir := t.TempDir()
	makeLog(t, dir, 12, MinSegmentSize)
	first := segmentFiles(t, dir)[0]
	flipByte(t, first, frameEnds(t, first)[0]+HeaderSize)
	_, openErr := Open(Options{Dir: dir, SegmentSize: MinSegmentSize})
	if !errors.Is(openErr, ErrCorrupt) {
		t.Fatalf("Open: %v", openErr)
	}
	r, err := Recover(Options{Dir: dir, SegmentSize: MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		_, err = r.Next()
		if err != nil {
			break
		}
	}
	if err == nil || err.Error() != openErr.Error() || n != 1 {
		t.Fatalf("after %d records: %v, Open says %v", n, err, openErr)
	}
	if _, again := r.Next(); again != err {
		t.Errorf("error not sticky: %v", again)
	}
	if rerr := r.Rewind(); rerr != err {
		t.Errorf("Rewind: %v", rerr)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The lock is free again.
	r, err = Recover(Options{Dir: dir, SegmentSize: MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Finish(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Finish: %v", err)
	}
}

// countingFS counts the bytes read from files opened through it.
type countingFS struct {
	vfs.FS
	read atomic.Int64
}

func (fs *countingFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		return f, err
	}
	return &countingFile{File: f, n: &fs.read}, nil
}

type countingFile struct {
	vfs.File
	n *atomic.Int64
}

func (f *countingFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.n.Add(int64(n))
	return n, err
}

func (f *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.n.Add(int64(n))
	return n, err
}

// A segment that is not a regular file (here a symlink to one moved
// elsewhere) fails Open and Repair instead of being left out of the log.
func TestSegmentNotRegularFile(t *testing.T) {
	bigRecords(t)
	dir := filepath.Join(t.TempDir(), "log")
	makeLog(t, dir, 12, MinSegmentSize)
	segs := segmentFiles(t, dir)
	if len(segs) < 2 {
		t.Fatalf("%d segments", len(segs))
	}
	moved := filepath.Join(t.TempDir(), filepath.Base(segs[0]))
	if err := os.Rename(segs[0], moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(moved, segs[0]); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(Options{Dir: dir}); err == nil {
		l.Close()
		t.Fatal("Open succeeded with a symlinked segment")
	}
	if _, err := Repair(vfs.Default, dir, RepairOptions{}); err == nil {
		t.Fatal("Repair succeeded with a symlinked segment")
	}
	if _, err := os.Lstat(segs[0]); err != nil {
		t.Fatalf("symlinked segment touched: %v", err)
	}
}
