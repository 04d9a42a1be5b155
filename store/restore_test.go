package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cidstore/cidstore/vfs"
)

// restoreModel inserts keys 1..keys into s with values derived from salt,
// plus one key with a large value set, and returns the model: two salts
// give overlapping keys with partly different value sets.
func restoreModel(t *testing.T, s *Store, salt uint64, keys uint64) model {
	t.Helper()
	m := model{}
	var batch []Pair
	for k := uint64(1); k <= keys; k++ {
		for j := uint64(0); j < 1+(k+salt)%5; j++ {
			p := Pair{w(k), w(1 + (k*j+salt)%7)}
			batch = append(batch, p)
			m.add(p.Key, p.Value)
		}
	}
	// One key with a large (B-tree) value set.
	for j := uint64(1); j <= 100; j++ {
		p := Pair{w(1000 + salt%2), w(j*(1+salt%3) + 1)}
		batch = append(batch, p)
		m.add(p.Key, p.Value)
	}
	must(t, s.InsertBatch(batch))
	return m
}

func streamOf(t *testing.T, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Export(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRestoreReplaces(t *testing.T) {
	ctx := context.Background()
	src := openMem(t, Options{Shards: 4})
	want := restoreModel(t, src, 1, 60)
	stream := streamOf(t, src)

	for _, persistent := range []bool{false, true} {
		name := "memory"
		if persistent {
			name = "persistent"
		}
		t.Run(name, func(t *testing.T) {
			dir := ""
			if persistent {
				dir = t.TempDir()
			}
			dst := openDir(t, dir, Options{Shards: 8, SegmentSize: 4096})
			old := restoreModel(t, dst, 2, 80) // more keys: some must go
			if persistent {
				must(t, dst.Checkpoint(ctx))
				fill(t, dst, old, 0, 50)
			}
			sum, err := dst.Restore(ctx, bytes.NewReader(stream))
			must(t, err)
			if sum.Pairs != int64(src.Pairs()) {
				t.Fatalf("restored %d pairs, source has %d", sum.Pairs, src.Pairs())
			}
			checkAll(t, dst, want, 0, 0)
			// Restoring the same stream again changes nothing.
			_, err = dst.Restore(ctx, bytes.NewReader(stream))
			must(t, err)
			checkAll(t, dst, want, 0, 1)
			// Writes go on on top of the new contents.
			must(t, dst.Insert(w(5000), w(1)))
			want := clone(want)
			want.add(w(5000), w(1))
			checkAll(t, dst, want, 0, 2)
			must(t, dst.Close())
			if !persistent {
				return
			}
			re := openDir(t, dir, Options{})
			checkAll(t, re, want, 0, 3)
			if rec := re.Stats().Recovery; rec.Records != 1 {
				t.Fatalf("recovery replayed %d records after the restored snapshot, want 1", rec.Records)
			}
			// Retention counts the restored snapshot as valid: a later
			// checkpoint keeps it, and recovery still works.
			must(t, re.Insert(w(5001), w(1)))
			want.add(w(5001), w(1))
			must(t, re.Checkpoint(ctx))
			must(t, re.Close())
			re = openDir(t, dir, Options{})
			defer re.Close()
			checkAll(t, re, want, 0, 4)
		})
	}
}

func clone(m model) model {
	c := model{}
	for k, vs := range m {
		for v := range vs {
			c.add(k, v)
		}
	}
	return c
}

// A damaged stream, a cancelled context or a closed store change nothing.
func TestRestoreFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	src := openMem(t, Options{})
	restoreModel(t, src, 1, 60)
	stream := streamOf(t, src)

	dir := t.TempDir()
	dst := openDir(t, dir, Options{})
	old := restoreModel(t, dst, 2, 30)
	bad := bytes.Clone(stream)
	bad[len(bad)/2] ^= 0x40
	if _, err := dst.Restore(ctx, bytes.NewReader(bad)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Restore of a damaged stream = %v, want ErrCorrupt", err)
	}
	if _, err := dst.Restore(ctx, bytes.NewReader(stream[:len(stream)-3])); err == nil {
		t.Fatal("Restore of a truncated stream succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := dst.Restore(cancelled, bytes.NewReader(stream)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Restore with a cancelled context = %v", err)
	}
	checkAll(t, dst, old, 0, 0)
	must(t, dst.Close())
	if _, err := dst.Restore(ctx, bytes.NewReader(stream)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Restore after Close = %v, want ErrClosed", err)
	}
	re := openDir(t, dir, Options{})
	defer re.Close()
	checkAll(t, re, old, 0, 1)
}

// TestRestoreCrashPoints images the directory at each step of a restore
// that writes a file (the marker record, the snapshot, its rename, the
// removal of what it replaced) and checks that every image recovers to
// exactly the old contents or exactly the new: the old before the
// snapshot's rename, the new from then on.
func TestRestoreCrashPoints(t *testing.T) {
	ctx := context.Background()
	src := openMem(t, Options{})
	want := restoreModel(t, src, 1, 60)
	stream := streamOf(t, src)

	dir := t.TempDir()
	h := &hookFS{FS: vfs.Default}
	c := DefaultConfig()
	c.SnapshotsKept = 2
	s := openDir(t, dir, Options{FS: h, SegmentSize: 4096, Config: &c, Shards: 4})
	old := restoreModel(t, s, 2, 80)
	must(t, s.Checkpoint(ctx))
	fill(t, s, old, 0, 300)
	must(t, s.Checkpoint(ctx))
	fill(t, s, old, 300, 400)

	type image struct {
		point string
		dir   string
		isNew bool
	}
	var images []image
	var mu sync.Mutex
	renamed := false
	snap := func(point string) {
		mu.Lock()
		defer mu.Unlock()
		images = append(images, image{point, imageDir(t, dir), renamed})
	}
	h.mu.Lock()
	h.onWrite = func(name string) {
		switch {
		case strings.Contains(name, ".wal"): // a segment, or the spare it was made from
			snap("before the marker record")
		case strings.HasSuffix(name, ".snap.tmp"):
			snap("during the snapshot write")
		}
	}
	h.onRename = func(oldpath, newpath string) {
		if strings.HasSuffix(newpath, ".snap") {
			snap("before the snapshot rename")
			mu.Lock()
			renamed = true
			mu.Unlock()
		}
	}
	h.onRemove = func(name string) {
		switch {
		case strings.HasSuffix(name, ".wal"):
			snap("during WAL removal")
		case strings.HasSuffix(name, ".del.tmp"):
			snap("during old snapshot removal")
		}
	}
	h.mu.Unlock()
	_, err := s.Restore(ctx, bytes.NewReader(stream))
	must(t, err)
	h.mu.Lock()
	h.onWrite, h.onRename, h.onRemove = nil, nil, nil
	h.mu.Unlock()
	snap("after the restore")
	must(t, s.Close())

	seen := map[string]int{}
	for i, img := range images {
		r, err := Open(img.dir, Options{})
		if err != nil {
			t.Fatalf("%s (image %d): Open: %v", img.point, i, err)
		}
		if img.isNew {
			checkAll(t, r, want, 0, i)
		} else {
			checkAll(t, r, old, 0, i)
		}
		must(t, r.Close())
		seen[img.point]++
	}
	for _, point := range []string{"before the marker record", "during the snapshot write", "before the snapshot rename",
		"during old snapshot removal", "during WAL removal", "after the restore"} {
		if seen[point] == 0 {
			t.Errorf("crash point %q never reached", point)
		}
	}
	t.Logf("images per crash point: %v", seen)
}

// Ordered iteration during a restore sees the old contents or the new,
// never a mix; a write issued meanwhile lands on top of the new contents.
func TestRestoreConcurrent(t *testing.T) {
	ctx := context.Background()
	src := openMem(t, Options{Shards: 16})
	want := restoreModel(t, src, 1, 400)
	stream := streamOf(t, src)
	dst := openMem(t, Options{Shards: 16})
	old := restoreModel(t, dst, 2, 500)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got := model{}
				for k, vs := range dst.All() {
					for _, v := range vs {
						got.add(k, v)
					}
				}
				if !sameModel(got, old) && !sameModel(got, want) {
					t.Error("All saw a mix of the old and the new contents")
					return
				}
			}
		}()
	}
	for round := 0; round < 3; round++ {
		_, err := dst.Restore(ctx, bytes.NewReader(stream))
		must(t, err)
	}
	close(stop)
	wg.Wait()
	checkAll(t, dst, want, 0, 0)
}

func TestViewExportsTheCut(t *testing.T) {
	ctx := context.Background()
	s := openMem(t, Options{})
	m := restoreModel(t, s, 3, 40)
	v, err := s.View()
	must(t, err)
	if v.Keys() != s.Len() {
		t.Fatalf("view has %d keys, store %d", v.Keys(), s.Len())
	}
	must(t, s.Insert(w(7777), w(1)))
	must(t, s.DeleteKey(w(1)))
	var buf bytes.Buffer
	if _, err := v.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	got := openMem(t, Options{})
	if _, err := got.Import(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	checkAll(t, got, m, 0, 0)
	must(t, s.Close())
	if _, err := s.View(); !errors.Is(err, ErrClosed) {
		t.Fatalf("View after Close = %v", err)
	}
	if _, err := v.Export(ctx, &bytes.Buffer{}); err != nil {
		t.Fatalf("Export of a view after Close: %v", err)
	}
}
