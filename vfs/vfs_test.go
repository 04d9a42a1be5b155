package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLockExclusive(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "LOCK")
	l1, err := Default.Lock(name)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("lock file mode %o, want 600", perm)
	}
	// A second lock in the same process uses a separate open file
	// description, so flock must conflict.
	if _, err := Default.Lock(name); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: got %v, want ErrLocked", err)
	}
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l1.Close(); err == nil {
		t.Error("second Close of lock succeeded")
	}
	l2, err := Default.Lock(name)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeBytes returns a WriteFileAtomic callback that writes b.
func writeBytes(b []byte) func(File) error {
	return func(f File) error {
		_, err := f.Write(b)
		return err
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, data := range []string{"first", "second, longer", ""} {
		if err := WriteFileAtomic(Default, p, p+".*.tmp", writeBytes([]byte(data))); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != data {
			t.Fatalf("got %q want %q", got, data)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %o", fi.Mode().Perm())
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("leftover temp files: %v", ents)
	}
}

func TestWriteFileAtomicFaults(t *testing.T) {
	tests := []struct {
		name string
		arm  func(f *FaultFS)
		want error
	}{
		{"enospc", func(f *FaultFS) { f.FailWrite(f.Writes()+1, syscall.ENOSPC) }, syscall.ENOSPC},
		{"short", func(f *FaultFS) { f.ShortWrite(f.Writes() + 1) }, io.ErrShortWrite},
		{"fsync", func(f *FaultFS) { f.FailSync(f.Syncs()+1, syscall.EIO) }, syscall.EIO},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			ffs := NewFaultFS(Default)
			if err := WriteFileAtomic(ffs, p, p+".tmp", writeBytes([]byte("old"))); err != nil {
				t.Fatal(err)
			}
			tc.arm(ffs)
			err := WriteFileAtomic(ffs, p, p+".tmp", writeBytes([]byte("new contents")))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var pe *os.PathError
			if !errors.As(err, &pe) {
				t.Errorf("error %v is not a *os.PathError", err)
			}
			got, rerr := os.ReadFile(p)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if string(got) != "old" {
				t.Errorf("file changed to %q after failed write", got)
			}
			ents, rerr := os.ReadDir(dir)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(ents) != 1 {
				t.Errorf("leftover temp files: %v", ents)
			}
		})
	}
}

func TestFaultFSCounters(t *testing.T) {
	dir := t.TempDir()
	ffs := NewFaultFS(Default)
	f, err := ffs.OpenFile(filepath.Join(dir, "a"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ffs.FailWrite(2, syscall.ENOSPC)
	ffs.ShortWrite(3)
	ffs.FailSync(2, syscall.EIO)

	if n, err := f.Write([]byte("1234")); err != nil || n != 4 {
		t.Fatalf("write 1: %d %v", n, err)
	}
	if n, err := f.Write([]byte("abcd")); !errors.Is(err, syscall.ENOSPC) || n != 0 {
		t.Fatalf("write 2: %d %v", n, err)
	}
	if n, err := f.Write([]byte("wxyz")); !errors.Is(err, io.ErrShortWrite) || n != 2 {
		t.Fatalf("write 3: %d %v", n, err)
	}
	if n, err := f.Write([]byte("!")); err != nil || n != 1 {
		t.Fatalf("write 4: %d %v", n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync 2: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if w, s := ffs.Writes(), ffs.Syncs(); w != 4 || s != 3 {
		t.Errorf("counters writes=%d syncs=%d", w, s)
	}
	buf := make([]byte, 16)
	n, err := f.ReadAt(buf, 0)
	if err != io.EOF {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "1234wx!" {
		t.Errorf("contents %q", got)
	}
}

func TestSyncDirMissing(t *testing.T) {
	if err := Default.SyncDir(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

// With a space limit the FaultFS behaves as a small filesystem: writes
// that would outgrow it write what fits and fail with ENOSPC, overwrites
// need no space, and removing or truncating files frees theirs.
func TestFaultFSSpace(t *testing.T) {
	dir := t.TempDir()
	ffs := NewFaultFS(Default)
	ffs.SetSpace(100)
	free := func(want int64) {
		t.Helper()
		if got, err := FreeSpace(ffs, dir); err != nil || got != want {
			t.Fatalf("FreeSpace = %d, %v; want %d", got, err, want)
		}
	}
	a := filepath.Join(dir, "a")
	f, err := ffs.OpenFile(a, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.Write(make([]byte, 60)); err != nil || n != 60 {
		t.Fatalf("write 60: %d %v", n, err)
	}
	free(40)
	if n, err := f.Write(make([]byte, 60)); !errors.Is(err, syscall.ENOSPC) || !IsNoSpace(err) || n != 40 {
		t.Fatalf("write past the limit: %d %v", n, err)
	}
	free(0)
	if _, err := f.Seek(10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Write(make([]byte, 50)); err != nil || n != 50 {
		t.Fatalf("overwrite: %d %v", n, err)
	}
	if err := f.Truncate(30); err != nil {
		t.Fatal(err)
	}
	free(70)
	b := filepath.Join(dir, "b")
	if err := ffs.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	free(70)
	if err := ffs.Remove(b); err != nil {
		t.Fatal(err)
	}
	free(100)
	// A file that existed before counts from its first open.
	if err := os.WriteFile(a, make([]byte, 25), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := ffs.OpenFile(a, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	free(75)
	ffs.SetSpace(-1)
	if got, err := FreeSpace(ffs, dir); err != nil || got <= 0 {
		t.Errorf("without a limit FreeSpace = %d, %v; want the filesystem's", got, err)
	}
	if _, err := FreeSpace(struct{ FS }{Default}, dir); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("FreeSpace of an FS that cannot tell: %v", err)
	}
}

// renameFailFS fails every Rename.
type renameFailFS struct{ FS }

func (renameFailFS) Rename(string, string) error { return syscall.EXDEV }

// TestCreateTempInstall covers the two halves of WriteFileAtomic: a fixed
// temporary name replaces a leftover, the file stays open through Install,
// a failed rename removes the temporary file, and errors name the step
// but not the temporary file.
func TestCreateTempInstall(t *testing.T) {
	dir := t.TempDir()
	tmp, path := filepath.Join(dir, "seg.tmp"), filepath.Join(dir, "seg")
	if err := os.WriteFile(tmp, []byte("leftover from a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := CreateTemp(Default, tmp, writeBytes([]byte("head")))
	if err != nil {
		t.Fatal(err)
	}
	if tf.Name() != tmp {
		t.Fatalf("Name %q, want %q", tf.Name(), tmp)
	}
	if err := tf.Install(path); err != nil {
		t.Fatal(err)
	}
	if _, err := tf.File().Write([]byte("-tail")); err != nil {
		t.Fatalf("write after Install: %v", err)
	}
	if err := tf.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "head-tail" {
		t.Fatalf("installed file holds %q, %v", got, err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file still there: %v", err)
	}

	// A failed rename removes the temporary file.
	tf, err = CreateTemp(renameFailFS{Default}, tmp, writeBytes([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	err = tf.Install(path)
	var te *TempFileError
	if !errors.Is(err, syscall.EXDEV) || !errors.As(err, &te) || te.Op != "rename" {
		t.Fatalf("Install: %v", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left after a failed rename: %v", err)
	}

	// A failed write: the message names the step, not the file.
	ffs := NewFaultFS(Default)
	ffs.FailWrite(ffs.Writes()+1, syscall.ENOSPC)
	_, err = CreateTemp(ffs, tmp, writeBytes([]byte("x")))
	if !errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "seg.tmp") ||
		!strings.Contains(err.Error(), "temporary file removed") {
		t.Fatalf("CreateTemp with a failing write: %v", err)
	}

	// "*" makes unique names, created exclusively.
	a, err := CreateTemp(Default, filepath.Join(dir, "out.*.tmp"), writeBytes(nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := CreateTemp(Default, filepath.Join(dir, "out.*.tmp"), writeBytes(nil))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() == b.Name() || !strings.HasPrefix(filepath.Base(a.Name()), "out.") || !strings.HasSuffix(a.Name(), ".tmp") {
		t.Fatalf("unique names %q and %q", a.Name(), b.Name())
	}
	if err := errors.Join(a.Discard(), b.Discard()); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files left: %v", ents)
	}
}
