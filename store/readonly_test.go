package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/cidstore/cidstore/vfs"
)

// files lists every file under dir with its size.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	must(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d", p, fi.Size()))
		return nil
	}))
	return out
}

// Options.ReadOnly reads a store as Open would recover it and changes
// nothing on disk; it fails on a path that is not a store and creates
// nothing there; writes fail with ErrReadOnly; and it excludes a writer.
func TestReadOnlyOpen(t *testing.T) {
	base := t.TempDir()
	for _, dir := range []string{filepath.Join(base, "missing"), base} {
		if _, err := Open(dir, Options{ReadOnly: true}); !errors.Is(err, ErrNotStore) {
			t.Fatalf("read-only Open of %s = %v, want ErrNotStore", dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "missing")); !os.IsNotExist(err) {
		t.Fatal("read-only Open created a directory")
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Fatal("read-only Open created files")
	}

	dir := t.TempDir()
	s := openDir(t, dir, Options{NoPreallocate: true})
	m := model{}
	fill(t, s, m, 0, 100)
	must(t, s.Checkpoint(context.Background()))
	fill(t, s, m, 100, 150)
	must(t, s.Close())
	segs := walSegments(t, dir)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write([]byte("a torn write"))
	must(t, errors.Join(err, f.Close()))
	tmp := filepath.Join(dir, snapDir, "00000000000000000001.snap.tmp")
	must(t, os.WriteFile(tmp, []byte("x"), 0o600))
	before := files(t, dir)

	r := openDir(t, dir, Options{ReadOnly: true})
	checkAll(t, r, m, 0, 0)
	for _, err := range []error{
		r.Insert(w(1), w(1)),
		r.InsertBatch(nil),
		r.Checkpoint(context.Background()),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Fatalf("write to a read-only store = %v, want ErrReadOnly", err)
		}
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("writable Open beside a read-only one = %v, want ErrLocked", err)
	}
	must(t, r.Close())
	if after := files(t, dir); !slices.Equal(before, after) {
		t.Fatalf("read-only open changed the store:\n%v\n%v", before, after)
	}
	if _, err := Open(dir, Options{ReadOnly: true, Repair: true}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("ReadOnly with Repair = %v", err)
	}
}

// An Open that fails in a directory it created leaves nothing behind.
func TestFailedOpenRemovesWhatItCreated(t *testing.T) {
	base := t.TempDir()
	fs := vfs.NewFaultFS(vfs.Default)
	fs.FailWrite(1, syscall.ENOSPC) // the first WAL segment's header
	dir := filepath.Join(base, "a", "b")
	if _, err := Open(dir, Options{FS: fs}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open = %v, want ENOSPC", err)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Fatalf("failed Open left %v", ents)
	}
	// A directory that was there stays.
	fs.FailWrite(fs.Writes()+1, syscall.ENOSPC)
	if _, err := Open(base, Options{FS: fs}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open = %v, want ENOSPC", err)
	}
	if _, err := os.Stat(base); err != nil {
		t.Fatal(err)
	}
}
