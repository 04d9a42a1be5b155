package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/vfs"
)

// smallFS returns a directory on a filesystem of size bytes with free
// bytes left: a tmpfs mounted for the test where that is allowed (root),
// else a FaultFS with a space limit over the test's directory. report
// false hides the FaultFS's free space from the store, as a filesystem
// that cannot tell it would. The tmpfs is unmounted when the test ends.
func smallFS(t *testing.T, size, free int64, report bool) (string, vfs.FS, string) {
	t.Helper()
	dir := t.TempDir()
	if report {
		err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size))
		if err == nil {
			t.Cleanup(func() {
				// Lazily, so that a failed test with files still open
				// leaves no mount behind.
				if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
					t.Errorf("unmount %s: %v", dir, err)
				}
			})
			filler := make([]byte, size-free)
			if err := os.WriteFile(filepath.Join(dir, "filler"), filler, 0o600); err != nil {
				t.Fatal(err)
			}
			return dir, vfs.Default, "tmpfs"
		}
		t.Logf("no tmpfs (%v): a FaultFS with a space limit stands in", err)
	}
	ffs := vfs.NewFaultFS(vfs.Default)
	ffs.SetSpace(free)
	if !report {
		return dir, struct{ vfs.FS }{ffs}, "FaultFS, free space not reported"
	}
	return dir, ffs, "FaultFS"
}

// On a 24 MiB filesystem with 13 MiB free (a small copy of a 100 MiB one
// with 55 MiB free, where stores went read-only after 1.7 MB of WAL), a
// store with default options (64 MiB segments, preallocated) writes 4 MiB
// of pairs without turning read-only: a spare segment is not made without
// room for it, and one that takes the space records need gives it back.
// Only a write of records that finds no space at all may turn the store
// read-only.
func TestWALOnSmallFilesystem(t *testing.T) {
	for _, report := range []bool{true, false} {
		dir, fs, what := smallFS(t, 24<<20, 13<<20, report)
		t.Run(what, func(t *testing.T) {
			s, err := Open(filepath.Join(dir, "store"), Options{FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() }) // on failure; a second Close is harmless
			const batch = 1000              // pairs per record: about 64 KiB
			var n uint64
			for n < 4<<20/64 {
				pairs := make([]Pair, batch)
				for i := range pairs {
					n++
					pairs[i] = Pair{Key: cid.FromWords(0, 0, 1, n), Value: w(n)}
				}
				if err := s.InsertBatch(pairs); err != nil {
					t.Fatalf("after %d MiB of pairs: %v", (n-batch)*64>>20, err)
				}
			}
			if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
				t.Fatal(err)
			}
			s, err = Open(filepath.Join(dir, "store"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Len(); got != int(n) {
				t.Fatalf("%d keys after reopening, want %d", got, n)
			}
		})
	}
}
