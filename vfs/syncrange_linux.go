package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// osFile adds RangeSyncer to *os.File.
type osFile struct{ *os.File }

func wrapOS(f *os.File) File { return osFile{f} }

// SyncRange calls sync_file_range(2) with WRITE alone on [0, off): dirty
// pages are queued for write-back and the call returns without waiting
// for them. Not waiting matters: a goroutine blocked in a system call keeps
// its P until the runtime's monitor takes it back, up to milliseconds
// later, and on a small machine that stalls every other goroutine.
func (f osFile) SyncRange(off int64) error {
	if err := unix.SyncFileRange(int(f.Fd()), 0, off, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
	}
	return nil
}

// Datasync calls fdatasync(2).
func (f osFile) Datasync() error {
	if err := ignoringEINTR(func() error { return unix.Fdatasync(int(f.Fd())) }); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// ignoringEINTR retries fn while it fails with EINTR, as package os does
// for its own system calls.
func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != unix.EINTR {
			return err
		}
	}
}
