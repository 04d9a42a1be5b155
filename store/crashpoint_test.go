package store

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// TestCheckpointCrashPoints images the directory at each dangerous moment
// of a checkpoint (mid snapshot write, after the rename but before any WAL
// removal, between WAL segment removals, between old snapshot removals)
// and checks that every image recovers every acknowledged pair.
func TestCheckpointCrashPoints(t *testing.T) {
	dir := t.TempDir()
	h := &hookFS{FS: vfs.Default}
	s := openDir(t, dir, Options{FS: h, SegmentSize: wal.MinSegmentSize, Config: withConfig(func(c *Config) { c.SnapshotsKept = 1 })})
	m := model{}
	fill(t, s, m, 0, 600)
	must(t, s.Checkpoint(context.Background())) // an older snapshot to replace
	fill(t, s, m, 600, 1200)
	must(t, s.Delete(w(3), w(3)))
	if delete(m[w(3)], w(3)); len(m[w(3)]) == 0 {
		delete(m, w(3))
	}

	images := map[string][]string{}
	var mu sync.Mutex
	snap := func(point string) {
		mu.Lock()
		defer mu.Unlock()
		images[point] = append(images[point], imageDir(t, dir))
	}
	writes := 0
	h.mu.Lock()
	h.onWrite = func(name string) {
		if strings.HasSuffix(name, ".snap.tmp") {
			if writes++; writes%2 == 1 {
				snap("during snapshot write")
			}
		}
	}
	h.onRename = func(oldpath, newpath string) {
		if strings.HasSuffix(newpath, ".snap") {
			snap("before snapshot rename")
		}
	}
	h.onRemove = func(name string) {
		switch {
		case strings.HasSuffix(name, ".wal"):
			snap("during WAL removal")
		case strings.HasSuffix(name, ".snap"), strings.HasSuffix(name, ".snap.del.tmp"):
			// (a retired snapshot is renamed to .del.tmp and shrunk first)
			snap("during old snapshot removal")
		}
	}
	h.mu.Unlock()
	must(t, s.Checkpoint(context.Background()))
	h.mu.Lock()
	h.onWrite, h.onRename, h.onRemove = nil, nil, nil
	h.mu.Unlock()
	snap("after checkpoint")
	must(t, s.Close())

	for _, point := range []string{"during snapshot write", "before snapshot rename", "during old snapshot removal", "during WAL removal", "after checkpoint"} {
		if len(images[point]) == 0 {
			t.Errorf("crash point %q never reached", point)
		}
		for i, img := range images[point] {
			r, err := Open(img, Options{})
			if err != nil {
				t.Fatalf("%s #%d: Open: %v", point, i, err)
			}
			checkAll(t, r, m, 0, i)
			must(t, r.Close())
		}
		t.Logf("%s: %d images recovered", point, len(images[point]))
	}
}

// TestCheckpointConsistentUnderLoad runs writers through a checkpoint and
// checks that (1) the snapshot alone equals the state the WAL describes at
// the snapshot's cut LSN, and (2) recovery from snapshot + WAL equals the
// state at the end.
func TestCheckpointConsistentUnderLoad(t *testing.T) {
	dir := t.TempDir()
	h := &hookFS{FS: vfs.Default}
	s := openDir(t, dir, Options{FS: h, SegmentSize: 4096, Shards: 8})
	var image string
	h.mu.Lock()
	h.onRemove = func(name string) { // first removal: snapshot renamed, WAL still whole
		if image == "" {
			image = imageDir(t, dir)
		}
	}
	h.mu.Unlock()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := uint64(0); g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := w(1+(i*7+g)%50), w(1+(i*3+g)%9)
				var err error
				switch i % 5 {
				case 0, 1, 2:
					err = s.Insert(k, v)
				case 3:
					err = s.Delete(k, v)
				case 4:
					err = s.InsertBatch([]Pair{{k, v}, {w(1 + (i+g)%50), v}})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	fill(t, s, model{}, 0, 300) // make sure there is WAL to cut
	must(t, s.Checkpoint(context.Background()))
	close(stop)
	wg.Wait()
	if image == "" {
		t.Fatal("checkpoint removed nothing; no image taken")
	}
	final := model{}
	for k, vs := range s.All() {
		for _, v := range vs {
			final.add(k, v)
		}
	}
	cutLSN := s.Stats().Checkpoints.LastLSN
	must(t, s.Close())

	// (1) Snapshot alone vs WAL replayed up to the cut, in the image.
	snapState := model{}
	snaps, _ := filepath.Glob(filepath.Join(image, snapDir, "*.snap"))
	if len(snaps) != 1 {
		t.Fatalf("image snapshots %v", snaps)
	}
	if _, _, err := snapshot.LoadFile(context.Background(), vfs.Default, snaps[0], 1, func(k cid.CID, vals []cid.CID) error {
		for _, v := range vals {
			snapState.add(k, v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	l, err := wal.Open(wal.Options{Dir: Layout{image}.WAL()})
	must(t, err)
	walState := model{}
	must(t, l.Replay(1, func(lsn uint64, typ uint8, p []byte) error {
		if lsn > cutLSN {
			return nil
		}
		return decodeOps(typ, p, walState.applyOp)
	}))
	must(t, l.Close())
	if !sameModel(snapState, walState) {
		t.Fatalf("snapshot at cut LSN %d holds %d keys; the WAL up to it describes %d", cutLSN, len(snapState), len(walState))
	}

	// (2) Recovery equals the final state.
	r := openDir(t, dir, Options{})
	defer r.Close()
	checkAll(t, r, final, 0, 0)
}
