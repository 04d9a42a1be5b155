package vfs

import (
	"errors"
	"syscall"
)

// SpaceReporter is implemented by filesystems that can tell how much
// space is free. Background work that would take much of it, such as
// preallocating a WAL segment, asks first and does without when space is
// short, so that it never takes the space acknowledged writes need.
type SpaceReporter interface {
	// FreeSpace returns the bytes available to this process on the
	// filesystem holding dir (statfs(2) f_bavail on Unix), or an error
	// (errors.ErrUnsupported if it cannot tell).
	FreeSpace(dir string) (int64, error)
}

// FreeSpace returns the bytes available on the filesystem of fs holding
// dir, or an error matching errors.ErrUnsupported when fs does not
// implement SpaceReporter.
func FreeSpace(fs FS, dir string) (int64, error) {
	if sr, ok := fs.(SpaceReporter); ok {
		return sr.FreeSpace(dir)
	}
	return 0, errors.ErrUnsupported
}

// IsNoSpace reports whether err says a filesystem is full: ENOSPC, or
// EDQUOT (a quota is).
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
