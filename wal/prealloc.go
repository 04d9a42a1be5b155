package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

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

	mu     sync.Mutex
	held   bool          // no spare until the next rotation (see hold)
	cancel chan struct{} // closed to abandon the fill in progress; nil if none
	filled chan struct{} // closed when the fill in progress has ended
}

// begin registers a fill about to start, unless spares are held.
func (p *preparer) begin() (cancel, filled chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		return nil, nil, false
	}
	p.cancel, p.filled = make(chan struct{}), make(chan struct{})
	return p.cancel, p.filled, true
}

// end marks the fill registered by begin as over; hold holds spares
// until the next rotation.
func (p *preparer) end(filled chan struct{}, hold bool) {
	p.mu.Lock()
	p.cancel, p.filled = nil, nil
	p.held = p.held || hold
	p.mu.Unlock()
	close(filled)
}

// resume lets spares be made again; the flusher calls it when a new
// segment starts.
func (l *Log) resume() {
	if l.prep == nil {
		return
	}
	l.prep.mu.Lock()
	l.prep.held = false
	l.prep.mu.Unlock()
}

// releaseSpace is called by the flusher when writing records, or creating
// a segment for them, failed with err. If err says the filesystem is full
// and preallocation is on, it gives back the space a spare takes: it
// abandons a fill in progress (waiting until the preparer has removed its
// file), removes a ready spare, and holds spares until the next rotation.
// It then reports true: the write is worth retrying once, since a spare
// may have held the space, or the preparer may have given up its own fill
// just before. Only a write that fails again fails the log.
func (l *Log) releaseSpace(err error) bool {
	if l.prep == nil || !vfs.IsNoSpace(err) {
		return false
	}
	p := l.prep
	p.mu.Lock()
	p.held = true
	cancel, filled := p.cancel, p.filled
	p.cancel = nil // closed below, once
	p.mu.Unlock()
	released := cancel != nil
	if released {
		close(cancel)
		<-filled
	}
	dropped, err := l.dropSpare()
	if err != nil {
		l.logger.Warn("wal: removing the spare segment failed", "err", err)
	}
	if released || dropped {
		l.logger.Warn("wal: out of space: gave up the spare segment to retry the write; no spare until the next segment")
	}
	return true
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

// prepare is the preparer goroutine. A spare is made only while the
// filesystem has room for two segments (the spare, and the rest of the
// active segment) where it can tell (vfs.SpaceReporter); after a spare
// could not be made, none is tried again until the next rotation.
func (l *Log) prepare() {
	defer close(l.prep.done)
	for {
		select {
		case <-l.prep.stop:
			_, l.prep.err = l.dropSpare()
			return
		case <-l.prep.req:
		}
		if l.ready.Load() != nil {
			continue
		}
		cancel, filled, ok := l.prep.begin()
		if !ok {
			continue
		}
		if free, err := vfs.FreeSpace(l.fs, l.dir); err == nil && free < 2*l.segSize {
			l.logger.Info("wal: too little free space to preallocate a segment; the next one is created without",
				"free", free, "needed", 2*l.segSize)
			l.prep.end(filled, true)
			continue
		}
		sp, err := l.zeroFill(cancel)
		switch {
		case errors.Is(err, errStopped):
			if err != errStopped { // the partial spare's cleanup failed
				l.prep.err = err
			}
			l.prep.end(filled, true)
			return
		case errors.Is(err, errCancelled):
			if err != errCancelled {
				l.logger.Warn("wal: removing an abandoned spare segment failed", "err", err)
			}
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
		l.prep.end(filled, err != nil)
	}
}

var (
	errStopped   = errors.New("wal: preparer stopped")
	errCancelled = errors.New("wal: spare abandoned for the space it takes")
)

// zeroFill writes a spare segment: header, zeros up to the segment size,
// fsync. It gives up, removing the file, on an error, when stopped, or
// when cancel is closed.
func (l *Log) zeroFill(cancel <-chan struct{}) (sp *spareFile, err error) {
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
		return nil, fmt.Errorf("wal: preallocate %s: %w", path, bare(err))
	}
	rs, _ := f.(vfs.RangeSyncer)
	for off := int64(SegmentHeaderSize); off < l.segSize; {
		select {
		case <-l.prep.stop:
			return nil, errStopped
		case <-cancel:
			return nil, errCancelled
		default:
		}
		n, err := f.Write(zeros[:min(int64(zeroChunk), l.segSize-off)])
		off += int64(n)
		if err != nil {
			return nil, fmt.Errorf("wal: preallocate %s: %w", path, bare(err))
		}
		if rs != nil {
			// Start write-back now, a MiB at a time, rather than leave
			// the whole segment to the final fsync.
			if err := rs.SyncRange(off); err != nil {
				return nil, fmt.Errorf("wal: preallocate %s: %w", path, bare(err))
			}
		}
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("wal: preallocate %s: %w", path, bare(err))
	}
	select {
	case <-cancel:
		return nil, errCancelled
	default:
	}
	if _, err := f.Seek(SegmentHeaderSize, io.SeekStart); err != nil {
		return nil, fmt.Errorf("wal: preallocate %s: %w", path, bare(err))
	}
	return &spareFile{f: f, path: path}, nil
}

// dropSpare closes and removes a spare that was never used, and reports
// whether there was one.
func (l *Log) dropSpare() (bool, error) {
	sp := l.ready.Swap(nil)
	if sp == nil {
		return false, nil
	}
	if err := errors.Join(sp.f.Close(), l.fs.Remove(sp.path)); err != nil {
		return true, fmt.Errorf("wal: remove unused spare %s: %w", sp.path, err)
	}
	return true, nil
}

// useSpare makes the ready spare, if any, the segment whose first record
// has LSN first: rename into place and fsync the directory. It reports
// false when no spare is ready, or when the spare could not be renamed
// (it is then removed, and spares are held until the next rotation). The
// flusher calls it with no active file.
func (l *Log) useSpare(first uint64) (bool, error) {
	sp := l.ready.Swap(nil)
	if sp == nil {
		return false, nil
	}
	path := filepath.Join(l.dir, segmentName(first))
	if err := l.fs.Rename(sp.path, path); err != nil {
		// The spare is still where it was: drop it and let the caller
		// create the segment as if there had been none. Only the
		// segment the records go to may fail the log.
		l.logger.Warn("wal: moving the spare segment into place failed; creating one instead",
			"segment", path, "err", err)
		if err := errors.Join(sp.f.Close(), l.fs.Remove(sp.path)); err != nil {
			l.logger.Warn("wal: removing the spare segment failed", "err", err)
		}
		l.prep.mu.Lock()
		l.prep.held = true
		l.prep.mu.Unlock()
		return false, nil
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// The rename happened: the segment exists, only the durability
		// of its name is in doubt, as for a created one.
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
