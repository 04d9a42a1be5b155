package vfs

import (
	"errors"
	"io"
	"os"
)

// File is an open file. *os.File satisfies it.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	// Sync commits the file's contents to stable storage (fsync).
	Sync() error
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Stat returns the file's FileInfo.
	Stat() (os.FileInfo, error)
	// Close closes the file.
	Close() error
	// Name returns the name the file was opened with.
	Name() string
}

// FS is the set of filesystem operations the storage engine uses.
type FS interface {
	// OpenFile opens name with the given flags (os.O_*) and permissions.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// Rename atomically renames oldpath to newpath, replacing newpath.
	Rename(oldpath, newpath string) error
	// MkdirAll creates path and any missing parents with mode perm.
	MkdirAll(path string, perm os.FileMode) error
	// ReadDir lists dir sorted by file name.
	ReadDir(dir string) ([]os.DirEntry, error)
	// Stat returns the FileInfo of name.
	Stat(name string) (os.FileInfo, error)
	// SyncDir fsyncs the directory dir so that entry changes are durable.
	SyncDir(dir string) error
	// Lock takes an exclusive non-blocking lock on the lock file name,
	// creating it with mode 0600 if needed. It returns an error matching
	// ErrLocked if the lock is held elsewhere. Closing the returned Closer
	// releases the lock.
	Lock(name string) (io.Closer, error)
}

// ErrLocked is returned (possibly wrapped) by FS.Lock when another holder
// already has the lock.
var ErrLocked = errors.New("vfs: lock held by another holder")
