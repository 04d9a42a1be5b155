package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// The validation of a store directory, shared by Open, VerifyDir (cidstore
// verify), Repair (cidstore repair) and the scrub worker, so that they can
// never disagree on what is damaged:
//
//   - every WAL record that passes its checksum must decode as operations
//     the store writes (checkRecord, the WAL's record check): a known type
//     (pair or triple), an exact length, a batch count that fits, no zero
//     CID;
//   - every snapshot must validate block by block, carry in its header the
//     cut LSN of its file name and hold no zero CID (checkSnapshot);
//   - the snapshot recovery starts from and the WAL must fit together
//     (checkPlan): the WAL reaches back to just after the cut and forward
//     to the cut.

// walCheck validates the payload of WAL records as recovery will read
// them (its check method is the WAL's record check) and remembers the
// last imported record it passed (see opImported).
type walCheck struct {
	lastImport atomic.Uint64
}

func (c *walCheck) check(r wal.Record) error {
	if isTripleRecord(r.Type) {
		return decodeTripleOps(r.Type, r.Payload, func(TripleOp) {})
	}
	err := decodeOps(r.Type, r.Payload, func(op) {})
	if _, ok := err.(*importMark); ok {
		for {
			old := c.lastImport.Load()
			if r.LSN <= old || c.lastImport.CompareAndSwap(old, r.LSN) {
				return nil
			}
		}
	}
	return err
}

// checkEntry rejects a snapshot entry with the reserved zero CID as
// corruption of file ("<stream>" for an imported stream). Values arrive in
// ascending order, so a zero value is the first.
func checkEntry(file string, k cid.CID, vals []cid.CID) error {
	if k.IsZero() || vals[0].IsZero() {
		return fmt.Errorf("%w: %s: entry with the reserved zero CID", snapshot.ErrCorrupt, file)
	}
	return nil
}

// checkTripleEntry rejects a triple entry (a subject and its flattened
// (predicate, object) values) with the reserved zero CID as corruption of
// file.
func checkTripleEntry(file string, k cid.CID, vals []cid.CID) error {
	bad := k.IsZero()
	for _, v := range vals {
		bad = bad || v.IsZero()
	}
	if bad {
		return fmt.Errorf("%w: %s: triple entry with the reserved zero CID", snapshot.ErrCorrupt, file)
	}
	return nil
}

// checkSnapshot reads and validates the snapshot sf in full, as recovery
// does, and passes its pair and triple entries to to's functions (those
// not nil; see snapshot.LoadFileEntries for how they are called). On an
// error they may have seen part of the file.
func checkSnapshot(ctx context.Context, fs vfs.FS, sf snapFile, parallelism int,
	to snapshot.Entries) (snapshot.Header, snapshot.Summary, error) {
	checked := func(check, fn func(cid.CID, []cid.CID) error) func(cid.CID, []cid.CID) error {
		return func(k cid.CID, vals []cid.CID) error {
			if err := check(k, vals); err != nil {
				return err
			}
			if fn != nil {
				return fn(k, vals)
			}
			return nil
		}
	}
	pairs := func(k cid.CID, vals []cid.CID) error { return checkEntry(sf.path, k, vals) }
	trips := func(k cid.CID, vals []cid.CID) error { return checkTripleEntry(sf.path, k, vals) }
	h, sum, err := snapshot.LoadFileEntries(ctx, fs, sf.path, parallelism,
		snapshot.Entries{Pairs: checked(pairs, to.Pairs), Triples: checked(trips, to.Triples)})
	if err == nil {
		err = checkCut(sf, h)
	}
	return h, sum, err
}

// checkSnapshotHeader validates only the header and trailer of sf (see
// snapshot.ReadHeader) and the cut LSN the header carries.
func checkSnapshotHeader(fs vfs.FS, sf snapFile) (snapshot.Header, error) {
	h, err := snapshot.ReadHeader(fs, sf.path)
	if err == nil {
		err = checkCut(sf, h)
	}
	return h, err
}

// checkCut rejects a snapshot whose header and file name disagree on its
// cut LSN: which of the two is wrong cannot be told.
func checkCut(sf snapFile, h snapshot.Header) error {
	if h.LSN != sf.lsn {
		return &snapshot.CorruptError{File: sf.path, Offset: 0,
			Reason: fmt.Sprintf("header says cut LSN %d, the file name %d", h.LSN, sf.lsn)}
	}
	return nil
}

// skippedSnap is a snapshot that recovery skipped because it did not
// validate.
type skippedSnap struct {
	snapFile
	err error
}

// checkPlan reports whether recovery can rebuild everything the directory
// acknowledged, starting from a snapshot with cut LSN from (0 and no
// snapshot: the empty state) and a WAL that holds the records first..last
// (last = first-1 when it holds none), whose last imported record is
// lastImport (0: none). skipped are the newer snapshots that did not
// validate, newest first: their content must be rebuilt from the WAL. An
// error matches ErrCorrupt and names the snapshots skipped.
func checkPlan(from uint64, skipped []skippedSnap, first, last, lastImport uint64) error {
	var err error
	switch {
	case lastImport > from:
		err = fmt.Errorf("%w: WAL record %d marks pairs imported from a snapshot stream that are in no WAL record; "+
			"only a snapshot with a cut at or after it holds them, and none validates", ErrCorrupt, lastImport)
	case from+1 < first:
		what := "no snapshot validates"
		if from > 0 {
			what = fmt.Sprintf("the newest valid snapshot ends at LSN %d", from)
		}
		err = fmt.Errorf("%w: %s, but the WAL starts at LSN %d: records %d..%d are missing",
			ErrCorrupt, what, first, from+1, first-1)
	case last < from:
		err = fmt.Errorf("%w: the WAL ends at LSN %d, before the snapshot's cut at LSN %d", ErrCorrupt, last, from)
	}
	for _, sk := range skipped {
		if err != nil {
			break
		}
		switch {
		case sk.lsn == 0:
			err = fmt.Errorf("%w: snapshot %s does not validate, and its cut is LSN 0: "+
				"it holds pairs imported from a snapshot stream, which no WAL record holds", ErrCorrupt, sk.path)
		case last < sk.lsn:
			err = fmt.Errorf("%w: snapshot %s does not validate, and the WAL ends at LSN %d: "+
				"records %d..%d that it holds are lost", ErrCorrupt, sk.path, last, last+1, sk.lsn)
		}
	}
	if err == nil || len(skipped) == 0 {
		return err
	}
	errs := []error{err}
	for _, sk := range skipped {
		errs = append(errs, fmt.Errorf("skipped: %w", sk.err))
	}
	return errors.Join(errs...)
}
