package vfs

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// A sparse file's disk usage is what was written to it, not its size; a
// written file's is at least its size.
func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	if err := os.WriteFile(full, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path     string
		min, max int64
	}{
		{full, 1 << 20, 1<<30 + 1},
		{sparse, 1, 1 << 20},
	} {
		fi, err := Default.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		got := DiskUsage(fi)
		if runtime.GOOS != "linux" && got == fi.Size() {
			continue // no block counts here, or no sparse files
		}
		if got < tc.min || got > tc.max {
			t.Errorf("%s: DiskUsage %d of a %d-byte file, want %d..%d", tc.path, got, fi.Size(), tc.min, tc.max)
		}
	}
}
