package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cidstore/cidstore/vfs"
)

// Segment preallocation; the package documentation describes it.
//
// Why: an fsync after an append commits the file's new size and block map
// through the filesystem's journal; an fdatasync after an overwrite of
// blocks that already exist writes only the data and flushes the disk's
// cache. That write-and-sync cycle bounds the throughput of SyncAlways
// writers; BENCHMARKS.md (DurableInsert) has what preallocation saves.

const (
	// spareName is the spare segment being zero-filled or waiting for the
	// next rotation. Open removes a leftover one.
	spareName = "spare.wal.tmp"
	// zeroChunk is the size of the preparer's writes.
	zeroChunk = 1 << 20
	// minPrealloc is the smallest SegmentSize that is preallocated, and at
	// most the amount written to a segment that was not before the
	// preparer is asked for a spare (see prepAfter): a log that never
	// writes a MiB never pays for one.
	minPrealloc = 1 << 20
)

// prepAfter is how much a segment that was not preallocated holds before
// the flusher asks for a spare: minPrealloc, or half the segment size when
// that is smaller, so that a segment rotates only after the spare was asked
// for.
func (l *Log) prepAfter() int64 { return min(minPrealloc, l.segSize/2) }

// switchDue reports whether the active segment was not preallocated and
// holds prepAfter bytes: the log wants a spare to move to. Flusher only.
func (l *Log) switchDue() bool {
	return l.prep != nil && !l.fPrealloc && l.fSize >= l.prepAfter()
}

var zeros [zeroChunk]byte

// spareFile is a zero-filled segment file ready to be renamed into place.
type spareFile struct {
	f    vfs.File
	path string
}

// preparer owns the spare segment until the flusher takes it.
type preparer struct {
	req  chan struct{} // capacity 1: a spare is wanted
	stop chan struct{} // closed by Close after the flusher has exited
	done chan struct{} // closed when the preparer goroutine returns
	err  error         // from cleaning up at stop; read by Close after done
}

// wantSpare asks the preparer for a spare segment, without blocking.
func (l *Log) wantSpare() {
	if l.prep == nil {
		return
	}
	select {
	case l.prep.req <- struct{}{}:
	default:
	}
}

// prepare is the preparer goroutine.
func (l *Log) prepare() {
	defer close(l.prep.done)
	for {
		select {
		case <-l.prep.stop:
			l.prep.err = l.dropSpare()
			return
		case <-l.prep.req:
		}
		if l.ready.Load() != nil {
			continue
		}
		sp, err := l.zeroFill()
		switch {
		case errors.Is(err, errStopped):
			if err != errStopped { // the partial spare's cleanup failed
				l.prep.err = err
			}
			return
		case err != nil:
			// Nothing acknowledged depends on a spare: carry on without.
			l.logger.Warn("wal: preallocating a segment failed; the next one is created without", "err", err)
		default:
			l.ready.Store(sp)
			select {
			case l.made <- struct{}{}:
			default:
			}
		}
	}
}

var errStopped = errors.New("wal: preparer stopped")

// zeroFill writes a spare segment: header, zeros up to the segment size,
// fsync. It gives up, removing the file, on an error or when stopped.
func (l *Log) zeroFill() (sp *spareFile, err error) {
	path := filepath.Join(l.dir, spareName)
	f, err := l.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", path, err)
	}
	defer func() {
		if err == nil {
			return
		}
		if cerr := errors.Join(f.Close(), l.fs.Remove(path)); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if _, err := f.Write(segmentHeader[:]); err != nil {
		return nil, fmt.Errorf("wal: write %s: %w", path, err)
	}
	rs, _ := f.(vfs.RangeSyncer)
	for off := int64(SegmentHeaderSize); off < l.segSize; {
		select {
		case <-l.prep.stop:
			return nil, errStopped
		default:
		}
		n, err := f.Write(zeros[:min(int64(zeroChunk), l.segSize-off)])
		off += int64(n)
		if err != nil {
			return nil, fmt.Errorf("wal: write %s: %w", path, err)
		}
		if rs != nil {
			// Start write-back now, a MiB at a time, rather than leave
			// the whole segment to the final fsync.
			if err := rs.SyncRange(off); err != nil {
				return nil, err
			}
		}
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("wal: fsync %s: %w", path, err)
	}
	if _, err := f.Seek(SegmentHeaderSize, io.SeekStart); err != nil {
		return nil, fmt.Errorf("wal: seek %s: %w", path, err)
	}
	return &spareFile{f: f, path: path}, nil
}

// dropSpare closes and removes a spare that was never used.
func (l *Log) dropSpare() error {
	sp := l.ready.Swap(nil)
	if sp == nil {
		return nil
	}
	if err := errors.Join(sp.f.Close(), l.fs.Remove(sp.path)); err != nil {
		return fmt.Errorf("wal: remove unused spare %s: %w", sp.path, err)
	}
	return nil
}

// useSpare makes the ready spare, if any, the segment whose first record
// has LSN first: rename into place and fsync the directory. It reports
// false when no spare is ready. The flusher calls it with no active file.
func (l *Log) useSpare(first uint64) (bool, error) {
	sp := l.ready.Swap(nil)
	if sp == nil {
		return false, nil
	}
	path := filepath.Join(l.dir, segmentName(first))
	if err := l.fs.Rename(sp.path, path); err != nil {
		return false, fmt.Errorf("wal: create segment %s: %w", path, errors.Join(err, sp.f.Close()))
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return false, fmt.Errorf("wal: create segment %s: %w", path, errors.Join(err, sp.f.Close()))
	}
	l.f, l.fpath, l.fSize, l.fPrealloc = sp.f, path, SegmentHeaderSize, true
	l.preallocated.Add(1)
	l.wantSpare()
	return true, nil
}

// removeLeftoverSpare removes a spare segment left by a process that died.
func removeLeftoverSpare(fs vfs.FS, dir string) error {
	err := fs.Remove(filepath.Join(dir, spareName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wal: remove leftover spare segment: %w", err)
	}
	return nil
}
