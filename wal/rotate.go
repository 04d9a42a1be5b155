package wal

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cidstore/cidstore/vfs"
)

// How the flusher moves from one segment to the next: rotation at the size
// limit, the switch of a segment that was not preallocated to a spare, and
// giving a spare's space back to records. The preallocator (prealloc.go)
// makes the spares.

// rotate fsyncs and closes the active segment and makes a new segment whose
// first record has LSN first the active one. The old segment is fsynced
// whatever the sync policy, so only the last segment can ever have a torn
// tail. It first waits until the syncer is idle (quiesce), so that the
// syncer never fsyncs a segment being closed or replaced.
func (l *Log) rotate(first uint64) error {
	l.quiesce()
	if err := l.syncActive(); err != nil {
		return err
	}
	fl := &l.fl
	f := fl.f
	fl.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: close %s: %w", fl.path, bare(err))
	}
	l.pre.resume() // a spare may be tried again for the next segment
	used, err := l.useSpare(first)
	if err != nil {
		return err
	}
	if !used {
		nf, path, err := createSegment(l.fs, l.dir, first)
		if err != nil && l.releaseSpace(err) {
			nf, path, err = createSegment(l.fs, l.dir, first)
		}
		if err != nil {
			return err
		}
		fl.f, fl.path, fl.size, fl.prealloc = nf, path, SegmentHeaderSize, false
	}
	path := fl.path
	l.mu.Lock()
	l.st.segs = append(l.st.segs, segment{first: first, path: path})
	l.mu.Unlock()
	return nil
}

// prepAfter is how much a segment that was not preallocated holds before
// the flusher asks for a spare: minPrealloc, or half the segment size when
// that is smaller, so that a segment rotates only after the spare was asked
// for.
func (l *Log) prepAfter() int64 { return min(minPrealloc, l.segSize/2) }

// switchDue reports whether the active segment was not preallocated and
// holds prepAfter bytes: the log wants a spare to move to.
func (l *Log) switchDue() bool {
	return l.pre != nil && !l.fl.prealloc && l.fl.size >= l.prepAfter()
}

// maybeSwitch moves a log whose active segment was not preallocated to a
// preallocated one at the start of a batch, once the active segment holds
// at least prepAfter bytes and the preallocator has a spare ready; the
// batch's first record then starts the new segment. (writeBatch asks for
// the spare after the write that takes the segment past prepAfter.)
// Append's projection of the segment size does not know about the switch,
// so the new segment is rotated somewhat early, once.
func (l *Log) maybeSwitch(rots []rotation) error {
	if !l.switchDue() || (len(rots) > 0 && rots[0].off == 0) {
		return nil
	}
	if !l.pre.isReady() {
		return nil // writeBatch asks for one
	}
	return l.rotate(l.fl.written + 1)
}

// useSpare makes the ready spare, if any, the segment whose first record
// has LSN first: rename into place and fsync the directory. It reports
// false when no spare is ready, or when the spare could not be renamed
// (it is then removed, and spares are held until the next rotation). The
// flusher calls it with no active file.
func (l *Log) useSpare(first uint64) (bool, error) {
	sp := l.pre.take()
	if sp == nil {
		return false, nil
	}
	path := filepath.Join(l.dir, segmentName(first))
	if err := sp.Install(path); err != nil {
		var te *vfs.TempFileError
		if !errors.As(err, &te) {
			// The rename happened: the segment exists, only the
			// durability of its name is in doubt, as for a created one.
			return false, fmt.Errorf("wal: create segment %s: %w", path, err)
		}
		// The spare is gone: create the segment as if there had been
		// none. Only the segment the records go to may fail the log.
		l.logger.Warn("wal: moving the spare segment into place failed; creating one instead",
			"segment", path, "err", err)
		l.pre.hold()
		return false, nil
	}
	l.fl.f, l.fl.path, l.fl.size, l.fl.prealloc = sp.File(), path, SegmentHeaderSize, true
	l.ctr.preallocated.Add(1)
	l.pre.want()
	return true, nil
}

// releaseSpace is called by the flusher when writing records, or creating
// a segment for them, failed with err. If err says the filesystem is full
// and preallocation is on, it has the preallocator give back the space a
// spare takes (see preallocator.release) and reports true: the write is
// worth retrying once, since a spare may have held the space, or the
// preallocator may have given up its own fill just before. Only a write
// that fails again fails the log.
func (l *Log) releaseSpace(err error) bool {
	if l.pre == nil || !vfs.IsNoSpace(err) {
		return false
	}
	if l.pre.release() {
		l.logger.Warn("wal: out of space: gave up the spare segment to retry the write; no spare until the next segment")
	}
	return true
}
