package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/wal"
)

// flipFile flips one bit of the file at path at offset off (negative:
// from the end).
func flipFile(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	if off < 0 {
		off += int64(len(data))
	}
	data[off] ^= 0x10
	must(t, os.WriteFile(path, data, 0o600))
}

func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	must(t, err)
	return segs
}

// Damage reported by the WAL or the snapshot layer matches the store's
// ErrCorrupt and the layer's own sentinel, and its text is the layer's,
// not prefixed by another layer's.
func TestCorruptErrorsWrappedOnce(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, Options{})
	m := model{}
	fill(t, s, m, 0, 50)
	var buf bytes.Buffer
	_, err := s.Export(context.Background(), &buf)
	must(t, err)
	must(t, s.Close())
	flipFile(t, walSegments(t, dir)[0], 8+20)

	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, wal.ErrCorrupt) || errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("Open of a damaged WAL = %v, want ErrCorrupt and wal.ErrCorrupt", err)
	}
	if n := strings.Count(err.Error(), "corrupt"); n != 1 {
		t.Fatalf("Open error says corrupt %d times: %v", n, err)
	}

	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)/2] ^= 1
	mem := openMem(t, Options{})
	_, err = mem.Import(context.Background(), bytes.NewReader(bad))
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("Import of a damaged stream = %v, want ErrCorrupt and snapshot.ErrCorrupt", err)
	}
	if !strings.HasPrefix(err.Error(), "snapshot: corrupt snapshot: <stream>") {
		t.Fatalf("Import error text %q", err)
	}
}
