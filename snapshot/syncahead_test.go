package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cidstore/cidstore/vfs"
)

// A background fsync failure is never swallowed: later writes and wait
// report it.
func TestSyncAheadReportsBackgroundFailure(t *testing.T) {
	ffs, f := faultFile(t)
	ffs.FailSync(1, syscall.EIO)
	sa := &syncAhead{f: f, every: 10}
	if _, err := sa.Write(make([]byte, 20)); err != nil { // starts the failing fsync
		t.Fatal(err)
	}
	if err := sa.wait(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("wait = %v, want EIO", err)
	}
	if _, err := sa.Write([]byte{1}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Write after a failed fsync = %v", err)
	}
	if ffs.Syncs() != 1 {
		t.Fatalf("%d fsyncs", ffs.Syncs())
	}
}

// On a file that can sync a range, the background step is a range sync;
// its failure is reported like a failed fsync.
func TestSyncAheadRangeFailure(t *testing.T) {
	ffs, f := faultFile(t)
	sa := newSyncAhead(t.Context(), f, nil)
	if sa.every != rangeEvery {
		t.Fatalf("every %d on a range syncer, want %d", sa.every, rangeEvery)
	}
	ffs.FailSync(1, syscall.EIO)
	if _, err := sa.Write(make([]byte, rangeEvery)); err != nil {
		t.Fatal(err)
	}
	if err := sa.wait(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("wait = %v, want EIO", err)
	}
}

// faultFile creates a file through a FaultFS, closed when the test ends.
func faultFile(t *testing.T) (*vfs.FaultFS, vfs.File) {
	t.Helper()
	ffs := vfs.NewFaultFS(vfs.Default)
	f, err := ffs.OpenFile(filepath.Join(t.TempDir(), "x"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return ffs, f
}
