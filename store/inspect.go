package store

import (
	"errors"
	"path/filepath"

	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// SnapshotInfo describes one snapshot file of a store directory.
type SnapshotInfo struct {
	Path   string
	LSN    uint64
	Size   int64
	Header snapshot.Header
	// Summary is filled by VerifyDir (it reads the whole file).
	Summary snapshot.Summary
	// Err is the validation error, if the snapshot is damaged.
	Err error
}

// DirInfo describes a store directory.
type DirInfo struct {
	Snapshots []SnapshotInfo // newest first
	WAL       wal.VerifyReport
	WALErr    error // WAL damage, if any
}

// Inspect describes the store directory dir without opening the store
// (no lock, nothing changed): snapshots with their headers, and WAL
// segments with LSN ranges and sizes. It reads the WAL fully to find the
// LSN ranges but only the snapshots' headers.
func Inspect(fs vfs.FS, dir string) (DirInfo, error) {
	return inspect(fs, dir, false)
}

// VerifyDir is Inspect that also validates every snapshot block. The
// returned error joins every damage found (each matching ErrCorrupt); nil
// means every file validated.
func VerifyDir(fs vfs.FS, dir string) (DirInfo, error) {
	return inspect(fs, dir, true)
}

func inspect(fs vfs.FS, dir string, full bool) (DirInfo, error) {
	if fs == nil {
		fs = vfs.Default
	}
	var info DirInfo
	if _, err := fs.Stat(dir); err != nil {
		return info, err
	}
	s := &Store{dir: dir, opts: Options{FS: fs}}
	snaps, _, err := s.listSnapshots()
	if err != nil {
		return info, err
	}
	var errs []error
	for _, sf := range snaps {
		si := SnapshotInfo{Path: sf.path, LSN: sf.lsn}
		if fi, err := fs.Stat(sf.path); err == nil {
			si.Size = fi.Size()
		}
		if full {
			si.Header, si.Summary, si.Err = snapshot.VerifyFile(fs, sf.path)
		} else {
			si.Header, si.Err = snapshot.ReadHeader(fs, sf.path)
		}
		if si.Err != nil {
			errs = append(errs, asCorrupt(si.Err))
		}
		info.Snapshots = append(info.Snapshots, si)
	}
	info.WAL, info.WALErr = wal.Verify(fs, filepath.Join(dir, walDir))
	if info.WALErr != nil {
		errs = append(errs, asCorrupt(info.WALErr))
	}
	if len(errs) > 0 && full {
		return info, errors.Join(errs...)
	}
	return info, nil
}
