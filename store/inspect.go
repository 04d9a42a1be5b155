package store

import (
	"context"
	"errors"

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
	// Base is the snapshot recovery would start from, the newest one that
	// validates (Inspect: whose header does), or nil if none does.
	Base *SnapshotInfo
	// RecoveryErr says why Open would fail although the WAL validates:
	// Base (or, without one, the empty state) and the WAL do not fit
	// together. It matches ErrCorrupt.
	RecoveryErr error
}

// Inspect describes the store directory dir without opening the store
// (no lock, nothing changed): snapshots with their headers, and WAL
// segments with LSN ranges and sizes. It reads the WAL fully to find the
// LSN ranges (and validates it as Open does) but only the snapshots'
// headers, so damage inside a snapshot's blocks goes unseen: use
// VerifyDir for that.
func Inspect(fs vfs.FS, dir string) (DirInfo, error) {
	return inspect(fs, dir, false)
}

// VerifyDir is Inspect that also validates every snapshot in full, as
// Open does. The returned error joins every damage found (each matching
// ErrCorrupt), and DirInfo.RecoveryErr; nil means that every file
// validates and that Open recovers the directory without skipping
// anything. An error that does not match ErrCorrupt is one reading the
// directory (missing, not permitted), not damage.
func VerifyDir(fs vfs.FS, dir string) (DirInfo, error) {
	return inspect(fs, dir, true)
}

func inspect(fs vfs.FS, dir string, full bool) (DirInfo, error) {
	if fs == nil {
		fs = vfs.Default
	}
	var info DirInfo
	if err := isStore(fs, dir); err != nil {
		return info, err
	}
	snaps, _, err := listSnapshots(fs, dir)
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
			si.Header, si.Summary, si.Err = checkSnapshot(context.Background(), fs, sf, 0, snapshot.Entries{})
		} else {
			si.Header, si.Err = checkSnapshotHeader(fs, sf)
		}
		if si.Err != nil {
			si.Err = asCorrupt(si.Err)
		}
		info.Snapshots = append(info.Snapshots, si)
	}
	for i := range info.Snapshots {
		if info.Snapshots[i].Err == nil {
			info.Base = &info.Snapshots[i]
			break
		}
	}
	var wc walCheck
	var skipped []skippedSnap
	info.WAL, info.WALErr = wal.Verify(fs, Layout{dir}.WAL(), wc.check)
	if info.WALErr != nil {
		info.WALErr = asCorrupt(info.WALErr)
		errs = append(errs, info.WALErr)
	} else {
		var from uint64
		for _, si := range info.Snapshots {
			if si.Err == nil {
				from = si.LSN
				break
			}
			skipped = append(skipped, skippedSnap{snapFile{si.LSN, si.Path}, si.Err})
		}
		first, last := info.WAL.Span()
		info.RecoveryErr = checkPlan(from, skipped, first, last, wc.lastImport.Load())
	}
	for i, si := range info.Snapshots {
		// RecoveryErr repeats the damage of the snapshots it skips.
		if si.Err != nil && (info.RecoveryErr == nil || i >= len(skipped)) {
			errs = append(errs, si.Err)
		}
	}
	if info.RecoveryErr != nil {
		errs = append(errs, info.RecoveryErr)
	}
	if len(errs) > 0 && full {
		return info, errors.Join(errs...)
	}
	return info, nil
}
