package wal

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cidstore/cidstore/vfs"
)

// waitSpare waits until a spare segment is ready. Only the flusher takes
// a spare, and only when records are written, so while the test is not
// writing a ready spare stays ready. The preparer signals l.made after it
// publishes a spare, so checking after each signal misses none.
func waitSpare(t *testing.T, l *Log) {
	t.Helper()
	timeout := time.After(time.Minute)
	for l.ready.Load() == nil {
		select {
		case <-l.made:
		case <-timeout:
			t.Fatal("no spare segment was made ready")
		}
	}
}

// TestPreallocatedSegments writes through a switch from an ordinary
// segment to a preallocated one and through a rotation onto a spare, then
// checks that a reopened log, and a copy of the directory taken while the
// log was open (a crash), hold exactly the records written, that appends
// continue after the last record and not after the zeros, and that no
// spare file is left behind.
func TestPreallocatedSegments(t *testing.T) {
	const segSize = 2 << 20
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize})
	next := 1
	write := func(n int) {
		t.Helper()
		writeRecords(t, l, next, n)
		next += n
	}
	write(40000) // over 1 MiB in an ordinary segment: a spare is asked for
	waitSpare(t, l)
	write(10) // starts the preallocated segment
	files := segmentFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("%d segments after the switch, want 2", len(files))
	}
	if fi, err := os.Stat(files[1]); err != nil || fi.Size() != segSize {
		t.Fatalf("switched-to segment: %v, size %d, want %d", err, fi.Size(), segSize)
	}
	if n := l.Stats().PreallocatedSegments; n != 1 {
		t.Fatalf("%d preallocated segments after the switch, want 1", n)
	}
	waitSpare(t, l)
	write(60000) // past the segment size: rotation onto the spare
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments, want at least 3", n)
	}
	if n := l.Stats().PreallocatedSegments; n < 2 {
		t.Fatalf("%d preallocated segments, want at least 2", n)
	}

	crash := t.TempDir()
	copyDir(t, dir, crash)
	if err := os.WriteFile(filepath.Join(crash, spareName), make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, spareName)); !os.IsNotExist(err) {
		t.Fatalf("spare left behind after Close: %v", err)
	}

	for _, d := range []string{dir, crash} {
		l = mustOpen(t, Options{Dir: d, SegmentSize: segSize})
		if got := l.Stats().TornBytesDropped; got != 0 {
			t.Errorf("%s: a clean zero tail counted as %d torn bytes", d, got)
		}
		if _, err := os.Stat(filepath.Join(d, spareName)); !os.IsNotExist(err) {
			t.Fatalf("%s: leftover spare not removed at Open: %v", d, err)
		}
		checkRecords(t, replayAll(t, l, 1), 1, next-1)
		writeRecords(t, l, next, 100)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, Options{Dir: d, SegmentSize: segSize})
		checkRecords(t, replayAll(t, l, 1), 1, next+99)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTornRecordInPreallocatedSegment cuts the last record of a
// preallocated segment short, as a crash during its write would: recovery
// keeps every record before it and reports the torn bytes without the
// zeros after them.
func TestTornRecordInPreallocatedSegment(t *testing.T) {
	const segSize = 2 << 20
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize})
	writeRecords(t, l, 1, 40000)
	waitSpare(t, l)
	writeRecords(t, l, 40001, 100)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := segmentFiles(t, dir)
	last := files[len(files)-1]
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	// The last record is record 40100; zero its final 5 bytes.
	first, ok := parseSegmentName(filepath.Base(last))
	if !ok || first < 2 {
		t.Fatalf("last segment %s is not the preallocated one", last)
	}
	end := int64(SegmentHeaderSize)
	for i := int(first); i <= 40100; i++ {
		end += int64(HeaderSize + len(payloadFor(i)))
	}
	if n := len(payloadFor(40100)); n < 5 {
		t.Fatalf("payload of %d bytes too short for the test", n)
	}
	clear(b[end-5 : end])
	if err := os.WriteFile(last, b, 0o600); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, Options{Dir: dir, SegmentSize: segSize})
	defer l.Close()
	checkRecords(t, replayAll(t, l, 1), 1, 40099)
	want := int64(HeaderSize + len(payloadFor(40100)) - 5)
	if got := l.Stats().TornBytesDropped; got != want {
		t.Errorf("TornBytesDropped %d, want %d", got, want)
	}
}

// TestNoPreallocate never makes a spare.
func TestNoPreallocate(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, SegmentSize: 2 << 20, NoPreallocate: true, Sync: SyncNever})
	writeRecords(t, l, 1, 60000)
	if l.prep != nil {
		t.Fatal("preparer running with NoPreallocate")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range segmentFiles(t, dir) {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 2<<20 {
			t.Fatalf("%s: %v, looks preallocated", p, err)
		}
	}
}

// spareFailFS fails every write to the spare segment with ENOSPC.
type spareFailFS struct{ vfs.FS }

func (fs spareFailFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil || filepath.Base(name) != spareName {
		return f, err
	}
	return spareFailFile{f}, nil
}

type spareFailFile struct{ vfs.File }

func (f spareFailFile) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

// A spare that cannot be written is logged and given up; the log goes on
// in ordinary segments, loses nothing and leaves no spare file behind.
func TestPreallocationFailureIsNotFatal(t *testing.T) {
	const segSize = 2 << 20
	dir := t.TempDir()
	seen := make(chan struct{})
	logBuf := syncBuffer{want: "preallocating a segment failed", seen: seen}
	l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize, FS: spareFailFS{vfs.Default},
		Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	writeRecords(t, l, 1, 40000) // over 1 MiB: a spare is asked for, and fails
	select {
	case <-seen:
	case <-time.After(time.Minute):
		t.Fatalf("no warning logged:\n%s", logBuf.String())
	}
	writeRecords(t, l, 40001, 80000) // past two segments
	if err := l.Err(); err != nil {
		t.Fatalf("log failed: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, spareName)); !os.IsNotExist(err) {
		t.Errorf("failed spare left behind: %v", err)
	}
	l = mustOpen(t, Options{Dir: dir, SegmentSize: segSize})
	defer l.Close()
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments, want at least 3", n)
	}
	checkRecords(t, replayAll(t, l, 1), 1, 120000)
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes
// that closes seen once a write contains want.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	seen chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen != nil && bytes.Contains(p, []byte(b.want)) {
		close(b.seen)
		b.seen = nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
