package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

func TestPersistReopen(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		s := openDir(t, dir, Options{Config: withConfig(func(c *Config) { c.Sync = mode }), SegmentSize: 4096})
		if !s.Persistent() {
			t.Fatal("store in a directory is not durable")
		}
		m := model{}
		for i := uint64(1); i <= 300; i++ {
			k, v := w(i%37+1), w(i%11+1)
			must(t, s.Insert(k, v))
			m.add(k, v)
		}
		must(t, s.Delete(w(1), w(1)))
		delete(m[w(1)], w(1))
		must(t, s.DeleteKey(w(2)))
		delete(m, w(2))
		must(t, s.InsertBatch([]Pair{{w(100), w(1)}, {w(101), w(2)}, {w(100), w(3)}}))
		m.add(w(100), w(1))
		m.add(w(101), w(2))
		m.add(w(100), w(3))
		for k := range m {
			if len(m[k]) == 0 {
				delete(m, k)
			}
		}
		must(t, s.Close())

		r := openDir(t, dir, Options{Shards: 3})
		checkAll(t, r, m, 0, 0)
		if r.Stats().Recovery.Records == 0 {
			t.Fatal("nothing replayed")
		}
		// Replaying again on top of the same log converges (idempotence):
		// a third open sees the same state.
		must(t, r.Close())
		r = openDir(t, dir, Options{})
		checkAll(t, r, m, 0, 1)
		for k := range r.All() {
			must(t, r.DeleteKey(k))
		}
		must(t, r.Close())
	}
}

func TestDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, Options{})
	defer s.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s := openDir(t, dir, Options{})
	must(t, s.Insert(w(1), w(2)))
	must(t, s.Close())
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	must(t, err)
}

func TestCorruptWALFailsOpen(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, Options{})
	for i := uint64(1); i <= 10; i++ {
		must(t, s.Insert(w(i), w(i)))
	}
	must(t, s.Close())
	segs, _ := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	data, err := os.ReadFile(segs[0])
	must(t, err)
	data[8+20] ^= 0x40 // inside the first record, which valid records follow
	must(t, os.WriteFile(segs[0], data, 0o600))

	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	r := openDir(t, dir, Options{Repair: true})
	defer r.Close()
	if r.Len() != 0 {
		t.Fatalf("repair kept %d keys before the damaged first record", r.Len())
	}
	must(t, r.Insert(w(1), w(1)))
	if !slices.Equal(r.Get(w(1)), []cid.CID{w(1)}) {
		t.Fatal("write after repair")
	}
}

// Recovery folds WAL records after the snapshot into the bulk load, up to
// a budget, and replays the rest one by one; every split gives the state
// the operations produced.
func TestRecoveryMergesWAL(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dir := t.TempDir()
	s := openDir(t, dir, Options{SegmentSize: 4096, Config: withConfig(func(c *Config) { c.InlineValues = 3 })})
	m := model{}
	step := func(n int) {
		for range n {
			k, v := w(rng.Uint64N(60)+1), w(rng.Uint64N(9)+1)
			switch rng.IntN(10) {
			case 0:
				must(t, s.DeleteKey(k))
				delete(m, k)
			case 1, 2:
				must(t, s.Delete(k, v))
				if delete(m[k], v); len(m[k]) == 0 {
					delete(m, k)
				}
			case 3:
				k2 := w(rng.Uint64N(60) + 1)
				must(t, s.InsertBatch([]Pair{{k, v}, {k2, v}}))
				m.add(k, v)
				m.add(k2, v)
			default:
				must(t, s.Insert(k, v))
				m.add(k, v)
			}
		}
	}
	step(400)
	must(t, s.Checkpoint(context.Background()))
	step(600)
	must(t, s.Close())
	defer func(old int64) { mergeOpsMax = old }(mergeOpsMax)
	var records int64
	for _, budget := range []int64{1 << 22, 0, 1, 7, 100} {
		mergeOpsMax = budget
		r := openDir(t, dir, Options{})
		rec := r.Stats().Recovery
		if records == 0 {
			records = rec.Records
		}
		if rec.SnapshotLSN == 0 || rec.Records == 0 || rec.Records != records {
			t.Fatalf("budget %d: recovery %+v, want %d records", budget, rec, records)
		}
		checkAll(t, r, m, 0, 0)
		must(t, r.Close())
	}
}
