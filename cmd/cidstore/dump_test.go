package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

func TestDumpLoadVerifyInspect(t *testing.T) {
	base := t.TempDir()
	src, dst, file := filepath.Join(base, "src"), filepath.Join(base, "dst"), filepath.Join(base, "dump.snap")
	s, err := store.Open(src, store.Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 300; i++ {
		if err := s.Insert(cid.FromWords(0, 0, 1, i), cid.FromWords(0, 0, 2, i%7+1)); err != nil {
			t.Fatal(err)
		}
	}
	ts := make([]store.Triple, 120)
	for i := range ts {
		ts[i] = store.Triple{S: cid.FromWords(0, 0, 3, uint64(i%30+1)), P: cid.FromWords(0, 0, 4, uint64(i%4+1)), O: cid.FromWords(0, 0, 5, uint64(i+1))}
	}
	if _, err := s.InsertTriples(ts); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if code, out := cli(t, "dump", src, file); code != 0 || !strings.Contains(out, "300 pairs, 120 triples") {
		t.Fatalf("dump: %d %s", code, out)
	}
	if code, out := cli(t, "load", file, dst); code != 0 || !strings.Contains(out, "300 pairs, 120 triples") {
		t.Fatalf("load: %d %s", code, out)
	}
	if code, out := cli(t, "verify", dst); code != 0 || !strings.Contains(out, "ok:") || !strings.Contains(out, " 120 ") {
		t.Fatalf("verify: %d %s", code, out)
	}
	if code, out := cli(t, "inspect", src); code != 0 || !strings.Contains(out, "WAL segments") || !strings.Contains(out, ".snap") {
		t.Fatalf("inspect: %d %s", code, out)
	}
	if code, out := cli(t, "inspect", "-metrics", dst); code != 0 || !strings.Contains(out, "cidstore_pairs 300") || !strings.Contains(out, "cidstore_triples 120") {
		t.Fatalf("inspect -metrics: %d %s", code, out)
	}
	// Damage makes verify fail.
	snaps, _ := filepath.Glob(filepath.Join(store.Layout{Dir: dst}.Snapshots(), "*.snap"))
	data, _ := os.ReadFile(snaps[0])
	data[len(data)/2] ^= 1
	os.WriteFile(snaps[0], data, 0o600)
	if code, out := cli(t, "verify", dst); code != 1 || !strings.Contains(out, "corruption") {
		t.Fatalf("verify of damage: %d %s", code, out)
	}
	for _, args := range [][]string{{"dump", src}, {"load", file}, {"verify"}, {"inspect"}} {
		if code, _ := cli(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// verify names the real error when a directory cannot be read, and
// reports WAL damage in the WAL's own words, once.
func TestVerifyErrorTexts(t *testing.T) {
	code, out := cli(t, "verify", filepath.Join(t.TempDir(), "missing"))
	if code != 1 || strings.Contains(out, "corruption") || !strings.Contains(out, "no such file") {
		t.Fatalf("verify of a missing directory: exit %d\n%s", code, out)
	}
	dir := t.TempDir()
	segs := writeRepairStore(t, dir, 160)
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[8+20] ^= 1
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = cli(t, "verify", dir)
	if code != 1 || !strings.Contains(out, "corruption found") || strings.Contains(out, "wal: wal:") {
		t.Fatalf("verify of a damaged WAL: exit %d\n%s", code, out)
	}
}
