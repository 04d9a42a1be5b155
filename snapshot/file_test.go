package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/vfs"
)

// dirNames lists the file names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	d := genDataset(31, 3, 8_000, func(i int) int { return 1 + i%3 }, false)
	dir := t.TempDir()
	path := filepath.Join(dir, Name(77))
	sum, err := WriteFile(context.Background(), vfs.Default, path, Header{LSN: 77}, d.parts())
	if err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{Name(77)}) {
		t.Fatalf("directory holds %v", names)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != sum.Bytes || st.Mode().Perm() != 0o600 {
		t.Fatalf("file size %d mode %v; summary %+v", st.Size(), st.Mode(), sum)
	}
	var c collector
	h, s, err := LoadFile(context.Background(), vfs.Default, path, 0, c.fn)
	if err != nil || h.LSN != 77 || h.Parts != 3 || s != sum {
		t.Fatalf("LoadFile = %+v %+v %v; want summary %+v", h, s, err, sum)
	}
	c.check(t, d, false)
	if h.Created.IsZero() {
		t.Fatal("creation time not set")
	}
}

func TestWriteFileCancelled(t *testing.T) {
	d := genDataset(32, 2, 40_000, one, false)
	tests := []struct {
		name  string
		parts func(cancel context.CancelFunc) []Part
		early bool // cancel before calling WriteFile
	}{
		{name: "before", parts: func(context.CancelFunc) []Part { return d.parts() }, early: true},
		{name: "while encoding", parts: func(cancel context.CancelFunc) []Part {
			ps := d.parts()
			inner := ps[0]
			ps[0] = func(yield func(cid.CID, []cid.CID) bool) {
				n := 0
				for k, v := range inner {
					if n++; n == 30_000 {
						cancel()
					}
					if !yield(k, v) {
						return
					}
				}
			}
			return ps
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			parts := tt.parts(cancel)
			if tt.early {
				cancel()
			}
			_, err := WriteFile(ctx, vfs.Default, filepath.Join(dir, Name(1)), Header{}, parts)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Fatalf("directory holds %v", names)
			}
		})
	}
}

// Every failed write or fsync is returned and leaves the previous snapshot
// file as it was, with no temporary file.
func TestWriteFileFaults(t *testing.T) {
	d := genDataset(33, 2, 20_000, one, false)
	old := []byte("previous snapshot")

	// Count the writes and syncs of a successful run.
	probe := vfs.NewFaultFS(vfs.Default)
	if _, err := WriteFile(context.Background(), probe, filepath.Join(t.TempDir(), "x.snap"), Header{}, d.parts()); err != nil {
		t.Fatal(err)
	}
	writes, syncs := probe.Writes(), probe.Syncs()
	if writes < 4 {
		t.Fatalf("only %d writes", writes)
	}

	type fault struct {
		name string
		arm  func(*vfs.FaultFS)
		want error
	}
	var faults []fault
	for n := int64(1); n <= writes; n++ {
		faults = append(faults,
			fault{"fail write", func(f *vfs.FaultFS) { f.FailWrite(n, syscall.ENOSPC) }, syscall.ENOSPC},
			fault{"short write", func(f *vfs.FaultFS) { f.ShortWrite(n) }, nil})
	}
	for n := int64(1); n <= syncs; n++ {
		faults = append(faults, fault{"fail sync", func(f *vfs.FaultFS) { f.FailSync(n, syscall.EIO) }, syscall.EIO})
	}
	for i, ft := range faults {
		dir := t.TempDir()
		path := filepath.Join(dir, Name(9))
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
		fs := vfs.NewFaultFS(vfs.Default)
		ft.arm(fs)
		_, err := WriteFile(context.Background(), fs, path, Header{}, d.parts())
		if err == nil || ft.want != nil && !errors.Is(err, ft.want) {
			t.Fatalf("%s #%d: err = %v, want %v", ft.name, i, err, ft.want)
		}
		if names := dirNames(t, dir); !slices.Equal(names, []string{Name(9)}) {
			t.Fatalf("%s #%d: directory holds %v", ft.name, i, names)
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, old) {
			t.Fatalf("%s #%d: previous file changed", ft.name, i)
		}
	}
}

// A writer that fails is reported by Write as is.
func TestWriteError(t *testing.T) {
	d := genDataset(34, 4, 20_000, one, false)
	for n := 0; n < 4; n++ {
		w := &failingWriter{after: n}
		if _, err := Write(context.Background(), w, Header{}, d.parts()); !errors.Is(err, errWriter) {
			t.Fatalf("fail after %d writes: err = %v", n, err)
		}
	}
}

var errWriter = errors.New("writer failed")

type failingWriter struct{ after, n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n++; w.n > w.after {
		return 0, errWriter
	}
	return len(p), nil
}

// WithYield replaces the encoders' yields: it is called at least once per
// 1024 entries, and the file is the same.
func TestWithYield(t *testing.T) {
	d := genDataset(32, 2, 5_000, func(int) int { return 1 }, false)
	var calls atomic.Int64
	var buf bytes.Buffer
	if _, err := Write(context.Background(), &buf, Header{LSN: 5}, d.parts(), WithYield(func() { calls.Add(1) })); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n < 5_000/1024 {
		t.Fatalf("yield called %d times for 5000 entries", n)
	}
	var c collector
	if _, _, err := Read(context.Background(), &buf, c.fn); err != nil {
		t.Fatal(err)
	}
	c.check(t, d, false)
}

// A block is compressed a zstd block at a time with a yield in between,
// and the frame decodes to the block.
func TestCompressYieldsPerChunk(t *testing.T) {
	var calls int
	e, err := newEncoder(&sink{w: io.Discard}, BlockTarget, func() { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	src := bytes.Repeat([]byte("compressible "), BlockTarget/13)
	z, err := e.compress(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := (len(src) - 1) / zstdChunk; calls != want {
		t.Errorf("%d yields compressing %d bytes, want %d", calls, len(src), want)
	}
	if len(z)-BlockHeaderSize >= len(src)/10 {
		t.Errorf("%d bytes compressed to %d", len(src), len(z)-BlockHeaderSize)
	}
	d, err := newBlockDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	out, err := d.zdec.DecodeAll(z[BlockHeaderSize:], make([]byte, 0, len(src)))
	if err != nil || !bytes.Equal(out, src) {
		t.Fatalf("frame decodes to %d bytes (%v), want the %d compressed", len(out), err, len(src))
	}
}
