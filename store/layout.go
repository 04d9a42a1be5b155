package store

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// The directory layout of a persistent store (see "Directory layout" in
// the package documentation): the names, how a store directory is told
// apart from others, and the listing of its snapshots.
const (
	lockName = "LOCK"      // flock: one Store per directory
	walDir   = "wal"       // the write-ahead log's segments
	snapDir  = "snapshots" // the snapshots, named by cut LSN
)

// Layout names the parts of the store directory Dir. Tools and tests that
// look inside a store directory use it instead of spelling the names out.
type Layout struct {
	Dir string
}

// Lock returns the path of the lock file that keeps a second Store out.
func (l Layout) Lock() string { return filepath.Join(l.Dir, lockName) }

// WAL returns the path of the directory of write-ahead log segments.
func (l Layout) WAL() string { return filepath.Join(l.Dir, walDir) }

// Snapshots returns the path of the directory of snapshot files.
func (l Layout) Snapshots() string { return filepath.Join(l.Dir, snapDir) }

// Snapshot returns the path of the snapshot file with cut LSN lsn.
func (l Layout) Snapshot(lsn uint64) string {
	return filepath.Join(l.Dir, snapDir, snapshot.Name(lsn))
}

// isStore fails with ErrNotStore unless dir is a store directory: a
// directory with a WAL directory in it.
func isStore(fs vfs.FS, dir string) error {
	for _, d := range []string{dir, Layout{dir}.WAL()} {
		fi, err := fs.Stat(d)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotStore, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s is not a directory", ErrNotStore, d)
		}
	}
	return nil
}

// notAStoreInside fails with ErrNotStore for an existing directory that
// is not a store (it has no WAL directory) but holds WAL segments or
// snapshots itself: the wal/ or snapshots/ directory of a store, or a copy
// of one, given by mistake for the store's. Open would otherwise create an
// empty store there and report success.
func notAStoreInside(fs vfs.FS, dir string) error {
	if isStore(fs, dir) == nil {
		return nil
	}
	ents, err := fs.ReadDir(dir)
	if err != nil {
		return nil // missing (Open creates it) or unreadable (Open says so)
	}
	for _, e := range ents {
		if _, ok := snapshot.ParseName(e.Name()); ok || wal.IsSegmentName(e.Name()) {
			return fmt.Errorf("%w: %s holds %s but no %s directory; is it part of a store?",
				ErrNotStore, dir, e.Name(), walDir)
		}
	}
	return nil
}

// snapFile is a snapshot in the store's directory.
type snapFile struct {
	lsn  uint64
	path string
}

// isSnapTemp reports whether name is one of the store's own temporary
// files in the snapshot directory: a snapshot being written
// (snapshot.WriteFile: NAME.snap.tmp) or being removed (removeGradually:
// NAME.snap.del.tmp). Other files are left alone, whatever their names.
func isSnapTemp(name string) bool {
	base, ok := strings.CutSuffix(name, ".tmp")
	if !ok {
		return false
	}
	_, ok = snapshot.ParseName(strings.TrimSuffix(base, ".del"))
	return ok
}

// listSnapshots returns the snapshots of the store directory dir, newest
// first, and the store's own leftover temporary files (isSnapTemp).
func listSnapshots(fsys vfs.FS, dir string) (snaps []snapFile, temps []string, err error) {
	sdir := Layout{dir}.Snapshots()
	ents, err := fsys.ReadDir(sdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil // no snapshot taken yet
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cidstore: list snapshots: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue // a directory or link named like one is no snapshot
		}
		if lsn, ok := snapshot.ParseName(name); ok {
			snaps = append(snaps, snapFile{lsn, filepath.Join(sdir, name)})
		} else if isSnapTemp(name) {
			temps = append(temps, filepath.Join(sdir, name))
		}
	}
	slices.SortFunc(snaps, func(a, b snapFile) int { return cmp.Compare(b.lsn, a.lsn) })
	return snaps, temps, nil
}

// removeTemps removes leftover temporary snapshot files (see
// listSnapshots): a checkpoint or a removal cut short by a crash.
func removeTemps(fs vfs.FS, temps []string) error {
	for _, t := range temps {
		if err := fs.Remove(t); err != nil {
			return fmt.Errorf("cidstore: remove %s: %w", t, err)
		}
	}
	return nil
}
