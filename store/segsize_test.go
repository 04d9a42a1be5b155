package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cidstore/cidstore/wal"
)

// SegmentSize is 0 (the default) or within wal.MinSegmentSize..
// wal.MaxSegmentSize; Open rejects anything else with ErrInvalidOptions,
// for in-memory stores too, before touching a directory.
func TestSegmentSizeBounds(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int64{-1, 1, wal.MinSegmentSize - 1, wal.MaxSegmentSize + 1, 1 << 40} {
		for _, d := range []string{"", filepath.Join(dir, "rejected")} {
			if s, err := Open(d, Options{SegmentSize: size}); !errors.Is(err, ErrInvalidOptions) {
				if err == nil {
					s.Close()
				}
				t.Errorf("Open(%q, SegmentSize %d) = %v, want ErrInvalidOptions", d, size, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rejected")); !os.IsNotExist(err) {
		t.Errorf("rejected options created the directory: %v", err)
	}
	for _, size := range []int64{0, wal.MinSegmentSize, wal.MaxSegmentSize} {
		s := openDir(t, filepath.Join(dir, "ok"), Options{SegmentSize: size})
		if err := s.Insert(w(1), w(2)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
