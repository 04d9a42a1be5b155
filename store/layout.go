package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// The directory layout of a persistent store (see "Directory layout" in
// the package documentation): the names, the lock file, how a store
// directory is told apart from others, the listing of its snapshots, and
// their retention.
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

// lockIfWritable takes the directory lock at path for a read-only open:
// not if the lock file is missing (no store has the directory open, since
// an open store keeps it), and not on a read-only filesystem (nothing can
// write there); creating the file would change the directory.
func lockIfWritable(fs vfs.FS, path string) (io.Closer, error) {
	if _, err := fs.Stat(path); errors.Is(err, iofs.ErrNotExist) {
		return io.NopCloser(nil), nil
	}
	lock, err := fs.Lock(path)
	if errors.Is(err, syscall.EROFS) {
		return io.NopCloser(nil), nil
	}
	return lock, err
}

// removeOldWALLock removes wal/LOCK, the WAL's own lock file in stores
// written before the store's lock came to cover the WAL directory; nothing
// takes it any more. The caller holds the store's lock, which an older
// version takes too before it opens the WAL. Failing to remove it harms
// nothing, so it is only logged.
func removeOldWALLock(fs vfs.FS, dir string, logger *slog.Logger) {
	err := fs.Remove(filepath.Join(dir, walDir, lockName))
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		logger.Warn("cidstore: removing the WAL's old lock file failed; it is unused", "err", err)
	}
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
	if errors.Is(err, iofs.ErrNotExist) {
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

// snapTrust says which snapshot files retention may count as snapshots:
// those that validated (the one recovery loaded and those written since)
// and, since recovery tried the newest first, every file older than the
// one it loaded. A file named like a snapshot that recovery skipped, or
// that appeared since, is not one: counting it could retire the valid
// snapshots and the WAL that only they and it cover.
type snapTrust struct {
	valid []uint64 // cut LSNs of snapshots that validated
	below uint64   // files with a cut below it count too (the loaded one's)
}

func (t *snapTrust) trusted(lsn uint64) bool {
	return lsn < t.below || slices.Contains(t.valid, lsn)
}

func (t *snapTrust) add(lsn uint64) {
	if !slices.Contains(t.valid, lsn) {
		t.valid = append(t.valid, lsn)
	}
}

// retain moves aside snapshot files it does not trust (see snapTrust),
// removes trusted snapshots beyond the newest SnapshotsKept and WAL
// segments wholly below the oldest kept snapshot, so every kept snapshot
// can still be brought up to date from the WAL. The caller holds ckpt.mu.
func (s *Store) retain(ctx context.Context) error {
	return s.keepNewest(ctx, s.cfg.Load().SnapshotsKept)
}

// keepNewest is retain with keep, at least 1, in place of SnapshotsKept.
// The caller holds ckpt.mu.
func (s *Store) keepNewest(ctx context.Context, keep int) error {
	list, _, err := listSnapshots(s.opts.FS, s.dir)
	if err != nil {
		return err
	}
	var errs []error
	var snaps []snapFile
	for _, sf := range list {
		if s.ckpt.trust.trusted(sf.lsn) {
			snaps = append(snaps, sf)
		} else if err := s.asideUntrusted(sf); err != nil {
			errs = append(errs, err)
		}
	}
	if len(snaps) == 0 {
		return errors.Join(errs...)
	}
	removed := 0
	for _, sf := range snaps[min(keep, len(snaps)):] {
		if err := s.removeGradually(ctx, sf.path); err != nil {
			errs = append(errs, fmt.Errorf("cidstore: remove old snapshot: %w", err))
			continue
		}
		s.ckpt.trust.valid = slices.DeleteFunc(s.ckpt.trust.valid, func(l uint64) bool { return l == sf.lsn })
		removed++
	}
	if removed > 0 {
		if err := s.opts.FS.SyncDir(Layout{s.dir}.Snapshots()); err != nil {
			errs = append(errs, fmt.Errorf("cidstore: sync snapshot dir: %w", err))
		}
	}
	oldest := snaps[min(keep, len(snaps))-1]
	if err := s.wal.TruncateBefore(oldest.lsn + 1); err != nil {
		errs = append(errs, fmt.Errorf("cidstore: drop WAL below LSN %d: %w", oldest.lsn+1, err))
	}
	return errors.Join(errs...)
}

// asideUntrusted moves the file sf aside if there is one and retention
// does not trust it (see snapTrust): before a checkpoint writes its
// snapshot under the same name, and at retention.
func (s *Store) asideUntrusted(sf snapFile) error {
	if s.ckpt.trust.trusted(sf.lsn) {
		return nil
	}
	if _, err := s.opts.FS.Stat(sf.path); errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	to, err := vfs.MoveAside(s.opts.FS, sf.path)
	if err != nil {
		return fmt.Errorf("cidstore: move aside %s: %w", sf.path, err)
	}
	s.opts.Logger.Warn("cidstore: moved aside a file named like a snapshot that did not validate",
		"file", sf.path, "to", to)
	return nil
}

// removeGradually deletes the snapshot at path. It is first renamed to a
// temporary name (made durable), so that it stops being a snapshot before
// any of it goes, and then freed with freeGradually. A crash part way
// leaves a temporary file, which Open and GC remove.
func (s *Store) removeGradually(ctx context.Context, path string) error {
	tmp := path + ".del.tmp"
	if err := s.opts.FS.Rename(path, tmp); err != nil {
		return err
	}
	if err := s.opts.FS.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return s.freeGradually(ctx, tmp)
}
