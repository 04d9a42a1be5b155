package sparsefile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := Write(path, 1<<20, map[int64][]byte{0: []byte("head"), 1<<20 - 4: []byte("tail")}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 1<<20)
	copy(want, "head")
	copy(want[len(want)-4:], "tail")
	if !bytes.Equal(b, want) {
		t.Fatal("contents differ")
	}
}
