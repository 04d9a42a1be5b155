package wal

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cidstore/cidstore/vfs"
)

// gateFS holds every fsync at a gate until the test lets it through, so
// that a test can put a second batch in flight while the first is being
// fsynced.
type gateFS struct {
	vfs.FS
	entered chan struct{} // an fsync arrived at the gate
	release chan struct{} // lets one fsync through
}

type gateFile struct {
	vfs.File
	fs *gateFS
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return gateFile{f, g}, nil
}

func (f gateFile) Sync() error {
	f.fs.entered <- struct{}{}
	<-f.fs.release
	return f.File.Sync()
}

// waitWritten waits until l has written lsn to the operating system,
// failing the test after a minute.
func waitWritten(t *testing.T, l *Log, lsn uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for l.WrittenLSN() < lsn {
		if time.Now().After(deadline) {
			t.Fatalf("LSN %d not written (written %d)", lsn, l.WrittenLSN())
		}
		runtime.Gosched()
	}
}

// TestPipelinedFsyncFailure puts two batches in flight under SyncAlways,
// the second written while the first is held in its fsync, and fails one
// of the two fsyncs: a failure of the second fsync fails only the second
// batch, a failure of the first fails both, and nothing is acknowledged
// past a failure.
func TestPipelinedFsyncFailure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failNth   int64 // which of the two fsyncs fails
		firstFail bool  // whether the first batch fails
	}{
		{"second fsync fails", 2, false},
		{"first fsync fails", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ffs := vfs.NewFaultFS(vfs.Default)
			g := &gateFS{FS: ffs, entered: make(chan struct{}), release: make(chan struct{})}
			// The log's first fsync (of the recovered segment at Open)
			// passes the gate too.
			go func() { <-g.entered; g.release <- struct{}{} }()
			l := mustOpen(t, Options{FS: g, Dir: t.TempDir(), NoPreallocate: true})
			a, err := l.Append(1, payloadFor(1))
			if err != nil {
				t.Fatal(err)
			}
			errA := make(chan error, 1)
			go func() { errA <- l.WaitDurable(a) }()
			<-g.entered // a's fsync is held
			b, err := l.Append(1, payloadFor(2))
			if err != nil {
				t.Fatal(err)
			}
			errB := make(chan error, 1)
			go func() { errB <- l.WaitDurable(b) }()
			waitWritten(t, l, b) // written while a's fsync is in flight
			if d := l.DurableLSN(); d >= a {
				t.Fatalf("durable LSN %d before the fsync of %d returned", d, a)
			}
			ffs.FailSync(ffs.Syncs()+tc.failNth, syscall.EIO)
			g.release <- struct{}{}
			if !tc.firstFail {
				if err := <-errA; err != nil {
					t.Fatalf("first batch: %v", err)
				}
				<-g.entered
				g.release <- struct{}{}
			}
			if err := <-errB; !errors.Is(err, syscall.EIO) {
				t.Fatalf("second batch: %v, want EIO", err)
			}
			if tc.firstFail {
				if err := <-errA; !errors.Is(err, syscall.EIO) {
					t.Fatalf("first batch: %v, want EIO", err)
				}
			}
			want := uint64(a)
			if tc.firstFail {
				want = a - 1
			}
			if d := l.DurableLSN(); d != want {
				t.Fatalf("durable LSN %d, want %d", d, want)
			}
			if err := l.WaitDurable(a); (err == nil) == tc.firstFail {
				t.Fatalf("WaitDurable(%d) after the failure = %v", a, err)
			}
			if _, err := l.Append(1, payloadFor(3)); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Append after the failure = %v, want the sticky EIO", err)
			}
			if err := l.Close(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close = %v, want the sticky EIO", err)
			}
		})
	}
}
