package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Every read-only command opens read-only: on a path that is not a store
// it fails and creates nothing, and on a store it changes nothing, not
// even a torn final write.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	base := t.TempDir()
	notDir := filepath.Join(base, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(base, "out.snap")
	for _, dir := range []string{filepath.Join(base, "missing", "store"), empty, notDir} {
		before := listing(t, base)
		for _, args := range [][]string{
			{"dump", dir, out},
			{"inspect", "-metrics", dir},
			{"inspect", dir},
			{"verify", dir},
		} {
			code, text := cli(t, args...)
			if code != 1 || !strings.Contains(text, "not a store directory") {
				t.Errorf("%v: exit %d\n%s", args, code, text)
			}
			if after := listing(t, base); !slices.Equal(before, after) {
				t.Fatalf("%v changed the directory:\n%v\n%v", args, before, after)
			}
		}
	}

	// A store with a torn final write: read, not repaired.
	dir := filepath.Join(base, "db")
	segs := writeRepairStore(t, dir, 160)
	appendTorn(t, segs[len(segs)-1])
	before := listing(t, dir)
	if code, text := cli(t, "inspect", "-metrics", dir); code != 0 || !strings.Contains(text, "cidstore_pairs 160") {
		t.Fatalf("inspect -metrics: exit %d\n%s", code, text)
	}
	if code, text := cli(t, "dump", dir, out); code != 0 || !strings.Contains(text, "160 pairs") {
		t.Fatalf("dump: exit %d\n%s", code, text)
	}
	if after := listing(t, dir); !slices.Equal(before, after) {
		t.Fatalf("read-only commands changed the store:\n%v\n%v", before, after)
	}
}

// dump refuses an output file inside the store directory, however it is
// spelled; load refuses an input file there.
func TestDumpRefusesFileInsideStore(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "db")
	segs := writeRepairStore(t, dir, 160)
	link := filepath.Join(base, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)
	for _, file := range []string{
		segs[0],
		filepath.Join(dir, "x.snap"),
		dir,
		filepath.Join(store.Layout{Dir: link}.WAL(), filepath.Base(segs[0])),
		store.Layout{Dir: filepath.Join(dir, "..", "db")}.Lock(),
	} {
		if code, text := cli(t, "dump", dir, file); code != 2 || !strings.Contains(text, "inside the store directory") {
			t.Errorf("dump %s: exit %d\n%s", file, code, text)
		}
		if code, text := cli(t, "load", file, dir); code != 2 || !strings.Contains(text, "inside the store directory") {
			t.Errorf("load %s: exit %d\n%s", file, code, text)
		}
	}
	if after := listing(t, dir); !slices.Equal(before, after) {
		t.Fatalf("refused commands changed the store:\n%v\n%v", before, after)
	}
	// Beside the store is fine.
	if code, text := cli(t, "dump", dir, filepath.Join(base, "db.snap")); code != 0 {
		t.Fatalf("dump beside the store: exit %d\n%s", code, text)
	}
}

// A load that fails leaves no directory it created; a load that works
// reports the keys and pairs the store holds, not the stream's entry
// count (a key with many values spans several entries).
func TestLoadResult(t *testing.T) {
	base := t.TempDir()
	src, file := filepath.Join(base, "src"), filepath.Join(base, "dump.snap")
	s, err := store.Open(src, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40000 // more than one 1 MiB block of values
	pairs := make([]store.Pair, n)
	for i := range pairs {
		pairs[i] = store.Pair{Key: cid.FromWords(0, 0, 0, 1), Value: cid.FromWords(0, 0, 1, uint64(i+1))}
	}
	if err := s.InsertBatch(pairs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if code, text := cli(t, "dump", src, file); code != 0 || !strings.Contains(text, "1 keys, 40000 pairs") {
		t.Fatalf("dump: exit %d\n%s", code, text)
	}
	if code, text := cli(t, "load", file, filepath.Join(base, "dst")); code != 0 || !strings.Contains(text, "1 keys, 40000 pairs") {
		t.Fatalf("load: exit %d\n%s", code, text)
	}

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	bad := filepath.Join(base, "bad.snap")
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(base, "new", "db")
	if code, text := cli(t, "load", bad, fresh); code != 1 || !strings.Contains(text, "corrupt") {
		t.Fatalf("load of a damaged stream: exit %d\n%s", code, text)
	}
	if _, err := os.Stat(filepath.Join(base, "new")); !os.IsNotExist(err) {
		t.Fatalf("failed load left %s behind: %v", filepath.Join(base, "new"), err)
	}
}
