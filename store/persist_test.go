package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

func openDir(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPersistReopen(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		s := openDir(t, dir, Options{Sync: mode, SegmentSize: 4096})
		if !s.Durable() {
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
		if r.Recovery().Records == 0 {
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
