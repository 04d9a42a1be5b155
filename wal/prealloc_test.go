package wal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cidstore/cidstore/vfs"
)

// waitSpare waits until a spare segment is ready. Only the flusher takes
// a spare, and only when records are written, so while the test is not
// writing a ready spare stays ready. The preallocator signals l.pre.made after it
// publishes a spare, so checking after each signal misses none.
func waitSpare(t *testing.T, l *Log) {
	t.Helper()
	timeout := time.After(time.Minute)
	for l.pre.ready.Load() == nil {
		select {
		case <-l.pre.made:
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
	if l.pre != nil {
		t.Fatal("preallocator running with NoPreallocate")
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

// closeAndCheck checks that the log l in dir has not failed, closes it,
// checks that no spare file is left, and reopens the log to check that it
// holds exactly records 1..n. It returns the reopened log, which the test
// closes.
func closeAndCheck(t *testing.T, l *Log, dir string, segSize int64, n int) *Log {
	t.Helper()
	if err := l.Err(); err != nil {
		t.Fatalf("log failed: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, spareName)); !os.IsNotExist(err) {
		t.Errorf("spare file left behind: %v", err)
	}
	l = mustOpen(t, Options{Dir: dir, SegmentSize: segSize})
	checkRecords(t, replayAll(t, l, 1), 1, n)
	return l
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
	l = closeAndCheck(t, l, dir, segSize, 120000)
	defer l.Close()
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments, want at least 3", n)
	}
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

// A ready spare that holds the space the records need gives it back: the
// write that ran out of space is retried and succeeds, and the log stays
// writable (only a write that fails again would fail it).
func TestReadySpareGivesWayToRecords(t *testing.T) {
	const segSize = 2 << 20
	dir := t.TempDir()
	ffs := vfs.NewFaultFS(vfs.Default)
	l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize, FS: ffs})
	writeRecords(t, l, 1, 100) // far below a MiB: no switch to a spare is due
	l.pre.want()
	waitSpare(t, l)
	ffs.SetSpace(ffs.Used() + 16<<10) // full but for 16 KiB; the spare holds 2 MiB
	writeRecords(t, l, 101, 5000)     // about 190 KiB
	if l.pre.ready.Load() != nil {
		t.Error("the spare is still there")
	}
	closeAndCheck(t, l, dir, segSize, 5100).Close()
}

// gatedSpareFS holds the spare's zero-fill after its first chunk (closing
// held) until a segment write runs out of space, so that a record write
// meets a fill in progress.
type gatedSpareFS struct {
	vfs.FS
	held, gate         chan struct{}
	heldOnce, gateOnce sync.Once
}

func (fs *gatedSpareFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		return f, err
	}
	return &gatedFile{File: f, fs: fs, spare: filepath.Base(name) == spareName}, nil
}

type gatedFile struct {
	vfs.File
	fs     *gatedSpareFS
	spare  bool
	writes int
}

func (f *gatedFile) Write(p []byte) (int, error) {
	if f.spare {
		if f.writes++; f.writes == 3 { // header, first chunk, then wait
			f.fs.heldOnce.Do(func() { close(f.fs.held) })
			<-f.fs.gate
		}
		return f.File.Write(p)
	}
	n, err := f.File.Write(p)
	if vfs.IsNoSpace(err) {
		f.fs.gateOnce.Do(func() { close(f.fs.gate) })
	}
	return n, err
}

// A spare being zero-filled that holds the space the records need is
// abandoned and removed, and the write that ran out of space is retried.
func TestFillingSpareGivesWayToRecords(t *testing.T) {
	const segSize = 2 << 20
	dir := t.TempDir()
	ffs := vfs.NewFaultFS(vfs.Default)
	gfs := &gatedSpareFS{FS: ffs, held: make(chan struct{}), gate: make(chan struct{})}
	defer gfs.gateOnce.Do(func() { close(gfs.gate) })
	l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize, FS: gfs})
	writeRecords(t, l, 1, 40000) // over 1 MiB: a spare is asked for
	select {
	case <-gfs.held:
	case <-time.After(time.Minute):
		t.Fatal("the spare's fill did not start")
	}
	ffs.SetSpace(ffs.Used() + 16<<10) // full but for 16 KiB; the spare holds 1 MiB
	writeRecords(t, l, 40001, 5000)
	closeAndCheck(t, l, dir, segSize, 45000).Close()
}

// Where the filesystem tells its free space, no spare is made while it
// could not hold two segments; the log fills the space with records and
// only a write of records that finds none left fails it. What it
// acknowledged survives.
func TestNoSpareWithoutRoom(t *testing.T) {
	const segSize = 2 << 20
	for _, report := range []bool{true, false} {
		t.Run(fmt.Sprintf("free space reported %v", report), func(t *testing.T) {
			dir := t.TempDir()
			ffs := vfs.NewFaultFS(vfs.Default)
			ffs.SetSpace(3 << 20) // a spare and the active segment do not both fit
			var fs vfs.FS = ffs
			if !report {
				fs = struct{ vfs.FS }{ffs} // hides FreeSpace
			}
			l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize, FS: fs})
			payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 4000) }
			var acked uint64
			for i := 1; ; i++ {
				lsn, err := l.Append(1, payload(i))
				if err == nil {
					err = l.WaitDurable(lsn)
				}
				if err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						t.Fatalf("record %d: %v, want ENOSPC", i, err)
					}
					break
				}
				acked = lsn
			}
			if held := int64(acked) * frameSize(4000); held < 3<<20-64<<10 {
				t.Errorf("the log failed holding %d bytes of records in 3 MiB", held)
			}
			if report && l.Stats().PreallocatedSegments != 0 {
				t.Error("a spare was made without room for it")
			}
			l.Close()
			l = mustOpen(t, Options{Dir: dir, SegmentSize: segSize})
			defer l.Close()
			got := replayAll(t, l, 1)
			if uint64(len(got)) < acked {
				t.Fatalf("%d records survive, %d were acknowledged", len(got), acked)
			}
			for i, r := range got[:acked] {
				if r.lsn != uint64(i+1) || !bytes.Equal(r.payload, payload(i+1)) {
					t.Fatalf("record %d damaged", i+1)
				}
			}
		})
	}
}

// spareRenameFailFS fails every rename of the spare segment and counts
// the failures.
type spareRenameFailFS struct {
	vfs.FS
	failed atomic.Int64
}

func (fs *spareRenameFailFS) Rename(oldpath, newpath string) error {
	if filepath.Base(oldpath) == spareName {
		fs.failed.Add(1)
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EIO}
	}
	return fs.FS.Rename(oldpath, newpath)
}

// A spare that cannot be moved into place is dropped and the segment is
// created as if there had been none: the log goes on and loses nothing.
func TestSpareRenameFailureIsNotFatal(t *testing.T) {
	const segSize = 2 << 20
	dir := t.TempDir()
	fs := &spareRenameFailFS{FS: vfs.Default}
	l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize, FS: fs})
	// Past 1 MiB a spare is asked for; the batch after it is ready moves
	// to it, which fails. Write until that has happened.
	next := 1
	for deadline := time.Now().Add(time.Minute); fs.failed.Load() == 0; next += 1000 {
		if time.Now().After(deadline) {
			t.Fatal("no spare was moved into place")
		}
		writeRecords(t, l, next, 1000)
	}
	writeRecords(t, l, next, 80000) // rotations past two more segments
	if n := l.Stats().PreallocatedSegments; n != 0 {
		t.Errorf("%d segments started on a spare that could not be renamed", n)
	}
	closeAndCheck(t, l, dir, segSize, next+79999).Close()
}
