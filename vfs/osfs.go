package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Default is the FS backed by the operating system.
var Default FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return wrapOS(f), nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) ReadDir(dir string) ([]os.DirEntry, error)    { return os.ReadDir(dir) }
func (osFS) Stat(name string) (os.FileInfo, error)        { return os.Stat(name) }

// FreeSpace implements SpaceReporter with statfs(2).
func (osFS) FreeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		cerr := f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.Join(fmt.Errorf("lock %s: %w", name, ErrLocked), cerr)
		}
		return nil, errors.Join(&os.PathError{Op: "flock", Path: name, Err: err}, cerr)
	}
	return &fileLock{f: f}, nil
}

// fileLock releases the flock when closed. Closing the descriptor releases
// the lock; the explicit LOCK_UN makes the release independent of any
// duplicated descriptors.
type fileLock struct {
	f *os.File
}

func (l *fileLock) Close() error {
	if l.f == nil {
		return os.ErrClosed
	}
	f := l.f
	l.f = nil
	uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	cerr := f.Close()
	if uerr != nil {
		return errors.Join(&os.PathError{Op: "funlock", Path: f.Name(), Err: uerr}, cerr)
	}
	return cerr
}
