package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cidstore/cidstore/wal"
)

func TestCheckpointAndRecover(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openDir(t, dir, Options{SegmentSize: wal.MinSegmentSize, Shards: 4})
	m := model{}
	fill(t, s, m, 0, 500)
	must(t, s.Checkpoint(ctx))
	first := s.Stats().Checkpoints
	if first.Count != 1 || first.LastPairs != int64(s.Pairs()) {
		t.Fatalf("checkpoint stats %+v, pairs %d", first, s.Pairs())
	}
	must(t, s.Checkpoint(ctx)) // nothing new: no second snapshot
	if s.Stats().Checkpoints.Count != 1 {
		t.Fatal("checkpoint without writes wrote a snapshot")
	}
	fill(t, s, m, 500, 900)
	must(t, s.DeleteKey(w(5)))
	delete(m, w(5))
	must(t, s.Checkpoint(ctx))
	fill(t, s, m, 900, 1000) // only in the WAL
	must(t, s.Close())

	snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*.snap"))
	if len(snaps) != 2 {
		t.Fatalf("snapshots kept: %v", snaps)
	}
	r := openDir(t, dir, Options{Shards: 16})
	rec := r.Stats().Recovery
	if rec.SnapshotLSN == 0 || rec.SnapshotsSkipped != 0 || rec.Records == 0 {
		t.Fatalf("recovery %+v", rec)
	}
	checkAll(t, r, m, 0, 0)
	must(t, r.Close())

	// A damaged newest snapshot falls back to the older one plus the WAL.
	newest := snaps[len(snaps)-1]
	data, err := os.ReadFile(newest)
	must(t, err)
	data[len(data)/2] ^= 0x10
	must(t, os.WriteFile(newest, data, 0o600))
	r = openDir(t, dir, Options{})
	if rec := r.Stats().Recovery; rec.SnapshotsSkipped != 1 || rec.SnapshotLSN != first.LastLSN {
		t.Fatalf("fallback recovery %+v, want the snapshot at %d", rec, first.LastLSN)
	}
	checkAll(t, r, m, 0, 1)
	must(t, r.Close())
}

// With only a corrupt snapshot and the WAL before it gone, Open must fail
// with ErrCorrupt rather than come up with silently missing data.
func TestCorruptOnlySnapshotWithTruncatedWAL(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, Options{SegmentSize: wal.MinSegmentSize, Config: withConfig(func(c *Config) { c.SnapshotsKept = 1 })})
	m := model{}
	fill(t, s, m, 0, 400)
	must(t, s.Checkpoint(context.Background()))
	fill(t, s, m, 400, 450)
	must(t, s.Close())
	if s.wal.FirstLSN() == 1 {
		t.Fatal("checkpoint did not drop old WAL segments")
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*.snap"))
	must(t, os.Truncate(snaps[0], 100))
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

func TestCheckpointInMemory(t *testing.T) {
	s := openMem(t, Options{})
	if err := s.Checkpoint(context.Background()); !errors.Is(err, ErrInMemory) {
		t.Fatalf("Checkpoint = %v", err)
	}
}

func TestCheckpointCancelledLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, Options{})
	defer s.Close()
	fill(t, s, model{}, 0, 100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Checkpoint(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Checkpoint = %v", err)
	}
	left, _ := os.ReadDir(Layout{dir}.Snapshots())
	if len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// removeGradually deletes a file larger than several chunks, and a small
// one, and reports a missing one.
func TestRemoveGradually(t *testing.T) {
	s := openDir(t, t.TempDir(), Options{})
	defer s.Close()
	dir := t.TempDir()
	for _, size := range []int64{3*removeChunk + 12345, 100} {
		path := filepath.Join(dir, fmt.Sprint(size))
		must(t, os.WriteFile(path, make([]byte, size), 0o600))
		must(t, s.removeGradually(context.Background(), path))
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("size %d: file still there: %v", size, err)
		}
	}
	if err := s.removeGradually(context.Background(), filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
