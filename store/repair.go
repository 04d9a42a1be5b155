package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// RepairReport describes what Repair (or Open with Options.Repair) did to
// a store directory.
type RepairReport struct {
	// Snapshots lists the snapshot files that did not validate, newest
	// first; each was moved aside.
	Snapshots []RepairedSnapshot
	// BaseLSN is the cut of the newest snapshot that validates, which the
	// WAL now goes on from (0: none does, and the WAL starts the store).
	BaseLSN uint64
	// WAL is what the repair of the write-ahead log did: every record it
	// kept follows BaseLSN without a gap.
	WAL wal.RepairReport
}

// RepairedSnapshot is a snapshot file that Repair moved aside.
type RepairedSnapshot struct {
	Path    string // where it was
	MovedTo string // where it is now
	LSN     uint64 // its cut, as its name says
	Err     error  // why it does not validate
	// Lost reports that the store no longer holds everything the snapshot
	// held: the WAL does not rebuild it (it holds imported pairs, or
	// records beyond what the WAL kept).
	Lost bool
}

// Changed reports whether the repair changed anything beyond dropping a
// torn final write, which Open does too.
func (r RepairReport) Changed() bool { return len(r.Snapshots) > 0 || r.WAL.Truncated }

// Repair brings the store directory dir into a state that Open accepts,
// keeping every acknowledged write that survives in an intact file. It
// validates every snapshot as Open does and moves aside (renames to
// *.corrupt, see vfs.MoveAside) those that do not validate; the newest
// one that does (or, if none does, the empty state) is the base. The WAL
// is then repaired to go on from the base's cut (see wal.Repair with a
// cut): damage at or below the cut costs nothing, since the snapshot holds
// those records; records after damage above the cut are dropped from the
// log, since replay cannot skip a gap, but stay in the segment files moved
// aside. An imported record above the cut (see Import) counts as damage
// there: without the snapshot that held the import, what follows it would
// replay onto a store that lacks the import.
//
// Repair deletes nothing but a torn final write and the temporary files
// of an interrupted checkpoint, which Open removes as well. It takes the
// directory's lock (ErrLocked while a Store has it open), fails with
// ErrNotStore for a directory that is not a store, and never reports
// success for a directory that Open would then reject. A nil fs means the
// operating system's; a nil logger discards the log.
func Repair(fs vfs.FS, dir string, logger *slog.Logger) (RepairReport, error) {
	if fs == nil {
		fs = vfs.Default
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := isStore(fs, dir); err != nil {
		return RepairReport{}, err
	}
	lock, err := fs.Lock(Layout{dir}.Lock())
	if err != nil {
		return RepairReport{}, fmt.Errorf("cidstore: repair %s: %w", dir, err)
	}
	rep, err := repairDir(fs, dir, logger)
	return rep, errors.Join(err, lock.Close())
}

// repairDir is Repair with the store's lock held.
func repairDir(fs vfs.FS, dir string, logger *slog.Logger) (RepairReport, error) {
	var rep RepairReport
	snaps, temps, err := listSnapshots(fs, dir)
	if err != nil {
		return rep, err
	}
	if err := removeTemps(fs, temps); err != nil {
		return rep, err
	}
	base := -1
	for i, sf := range snaps {
		_, _, err := checkSnapshot(context.Background(), fs, sf, 0, snapshot.Entries{})
		switch {
		case err == nil && base < 0:
			base = i
			rep.BaseLSN = sf.lsn
		case err != nil && !errors.Is(asCorrupt(err), ErrCorrupt):
			return rep, fmt.Errorf("cidstore: repair: %w", err) // cannot read it: touch nothing
		case err != nil:
			rep.Snapshots = append(rep.Snapshots, RepairedSnapshot{Path: sf.path, LSN: sf.lsn, Err: asCorrupt(err)})
		}
	}
	for i := range rep.Snapshots {
		sn := &rep.Snapshots[i]
		if sn.MovedTo, err = vfs.MoveAside(fs, sn.Path); err != nil {
			return rep, fmt.Errorf("cidstore: repair: move aside %s: %w", sn.Path, err)
		}
		logger.Warn("cidstore: repair moved aside a snapshot that does not validate",
			"file", sn.Path, "to", sn.MovedTo, "err", sn.Err)
	}
	var wc walCheck
	rep.WAL, err = wal.Repair(fs, Layout{dir}.WAL(), wal.RepairOptions{
		Logger:  logger,
		HaveCut: true,
		Cut:     rep.BaseLSN,
		NoLock:  true, // the store's lock covers the WAL directory
		CheckRecord: func(r wal.Record) error {
			if r.Type == opImported && r.LSN > rep.BaseLSN {
				return errors.New("imported pairs that no snapshot that validates holds")
			}
			return wc.check(r)
		},
	})
	if err != nil {
		return rep, fmt.Errorf("cidstore: repair: %w", err)
	}
	for i := range rep.Snapshots {
		sn := &rep.Snapshots[i]
		sn.Lost = sn.LSN == 0 || sn.LSN > rep.WAL.LastLSN
	}
	// What Open checks beyond the files themselves, which were all just
	// validated as Open validates them.
	if err := checkPlan(rep.BaseLSN, nil, rep.WAL.FirstLSN, rep.WAL.LastLSN, wc.lastImport.Load()); err != nil {
		return rep, fmt.Errorf("cidstore: repair could not make %s open: %w", dir, err)
	}
	return rep, nil
}
