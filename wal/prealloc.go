package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cidstore/cidstore/vfs"
)

// Segment preallocation; the package documentation describes it, and
// BENCHMARKS.md (DurableInsert) has what it saves. An fsync after an
// append commits the file's new size and block map through the
// filesystem's journal; an fdatasync after an overwrite of blocks that
// already exist writes only the data.

const (
	// spareName is the spare segment being zero-filled or waiting for the
	// next rotation. Open removes a leftover one.
	spareName = "spare.wal.tmp"
	// zeroChunk is the size of the preallocator's writes.
	zeroChunk = 1 << 20
	// minPrealloc is the smallest SegmentSize that is preallocated, and at
	// most the amount written to a segment that was not before the
	// preallocator is asked for a spare (see Log.prepAfter): a log that
	// never writes a MiB never pays for one.
	minPrealloc = 1 << 20
)

var zeros [zeroChunk]byte

// preallocator makes spare segments ahead of need on a goroutine of its
// own, as etcd's file pipeline does: a spare is a segment file under the
// temporary name spareName, holding the header and zeros up to the
// segment size, fsynced. The flusher asks for one (want), takes a ready
// one without waiting (take), renames it into place itself, and has the
// preallocator give the space back when records run out of it (release).
// After a spare could not be made, could not be renamed, or was given
// back, none is made until the next segment starts (hold, resume).
//
// All methods but Close may be called on a nil preallocator (preallocation
// off), where they do nothing.
type preallocator struct {
	fs     vfs.FS
	dir    string
	size   int64
	logger *slog.Logger

	ready atomic.Pointer[vfs.TempFile] // a spare, set by the goroutine, taken by the flusher
	made  chan struct{}                // tests: a spare was made ready (capacity 1, never blocks)
	req   chan struct{}                // capacity 1: a spare is wanted
	stop  chan struct{}                // closed by Close
	done  chan struct{}                // closed when the goroutine returns
	err   error                        // from cleaning up at stop; read by Close after done

	mu     sync.Mutex
	held   bool          // no spare until the next segment starts
	cancel chan struct{} // closed to abandon the fill in progress; nil if none
	filled chan struct{} // closed when the fill in progress has ended
}

// newPreallocator starts a preallocator of segments of size bytes in dir.
func newPreallocator(fs vfs.FS, dir string, size int64, logger *slog.Logger) *preallocator {
	p := &preallocator{
		fs: fs, dir: dir, size: size, logger: logger,
		made: make(chan struct{}, 1),
		req:  make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go p.run()
	return p
}

// Close stops the goroutine, abandoning a fill in progress, and removes a
// spare nobody took. The flusher must have stopped.
func (p *preallocator) Close() error {
	close(p.stop)
	<-p.done
	return p.err
}

// want asks for a spare, without blocking.
func (p *preallocator) want() {
	if p == nil {
		return
	}
	select {
	case p.req <- struct{}{}:
	default:
	}
}

// isReady reports whether a spare is ready.
func (p *preallocator) isReady() bool { return p != nil && p.ready.Load() != nil }

// take returns the ready spare, or nil; the caller owns it.
func (p *preallocator) take() *vfs.TempFile {
	if p == nil {
		return nil
	}
	return p.ready.Swap(nil)
}

// hold makes no spare until the next segment starts.
func (p *preallocator) hold() { p.setHeld(true) }

// resume lets spares be made again; the flusher calls it when a new
// segment starts.
func (p *preallocator) resume() { p.setHeld(false) }

func (p *preallocator) setHeld(held bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.held = held
	p.mu.Unlock()
}

// release gives back the space a spare takes, for records that ran out of
// it: it abandons a fill in progress (waiting until the goroutine has
// removed its file), removes a ready spare, and holds spares until the
// next segment. It reports whether there was a spare or a fill to give up.
func (p *preallocator) release() bool {
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
	dropped, err := p.drop()
	if err != nil {
		p.logger.Warn("wal: removing the spare segment failed", "err", err)
	}
	return released || dropped
}

// begin registers a fill about to start, unless spares are held.
func (p *preallocator) begin() (cancel, filled chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		return nil, nil, false
	}
	p.cancel, p.filled = make(chan struct{}), make(chan struct{})
	return p.cancel, p.filled, true
}

// end marks the fill registered by begin as over; hold holds spares
// until the next segment.
func (p *preallocator) end(filled chan struct{}, hold bool) {
	p.mu.Lock()
	p.cancel, p.filled = nil, nil
	p.held = p.held || hold
	p.mu.Unlock()
	close(filled)
}

// run is the preallocator goroutine. A spare is made only while the
// filesystem has room for two segments (the spare, and the rest of the
// active segment) where it can tell (vfs.SpaceReporter); after a spare
// could not be made, none is tried again until the next segment.
func (p *preallocator) run() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			_, p.err = p.drop()
			return
		case <-p.req:
		}
		if p.ready.Load() != nil {
			continue
		}
		cancel, filled, ok := p.begin()
		if !ok {
			continue
		}
		if free, err := vfs.FreeSpace(p.fs, p.dir); err == nil && free < 2*p.size {
			p.logger.Info("wal: too little free space to preallocate a segment; the next one is created without",
				"free", free, "needed", 2*p.size)
			p.end(filled, true)
			continue
		}
		sp, err := p.zeroFill(cancel)
		switch {
		case errors.Is(err, errStopped):
			if leftBehind(err) {
				p.err = err
			}
			p.end(filled, true)
			return
		case errors.Is(err, errCancelled):
			if leftBehind(err) {
				p.logger.Warn("wal: removing an abandoned spare segment failed", "err", err)
			}
		case err != nil:
			// Nothing acknowledged depends on a spare: carry on without.
			p.logger.Warn("wal: preallocating a segment failed; the next one is created without", "err", err)
		default:
			p.ready.Store(sp)
			select {
			case p.made <- struct{}{}:
			default:
			}
		}
		p.end(filled, err != nil)
	}
}

var (
	errStopped   = errors.New("wal: preallocator stopped")
	errCancelled = errors.New("wal: spare abandoned for the space it takes")
)

// leftBehind reports whether err, from making a spare, says that its
// file could not be removed.
func leftBehind(err error) bool {
	var te *vfs.TempFileError
	return errors.As(err, &te) && te.RemoveErr != nil
}

// zeroFill writes a spare segment: header, zeros up to the segment size,
// fsync (vfs.CreateTemp). It gives up, removing the file, on an error,
// when stopped, or when cancel is closed.
func (p *preallocator) zeroFill(cancel <-chan struct{}) (*vfs.TempFile, error) {
	path := filepath.Join(p.dir, spareName)
	sp, err := vfs.CreateTemp(p.fs, path, func(f vfs.File) error {
		if err := writeSegmentHeader(f); err != nil {
			return err
		}
		rs, _ := f.(vfs.RangeSyncer)
		for off := int64(SegmentHeaderSize); off < p.size; {
			select {
			case <-p.stop:
				return errStopped
			case <-cancel:
				return errCancelled
			default:
			}
			n, err := f.Write(zeros[:min(int64(zeroChunk), p.size-off)])
			off += int64(n)
			if err != nil {
				return err
			}
			if rs != nil {
				// Start write-back now, a MiB at a time, rather than
				// leave the whole segment to the final fsync.
				if err := rs.SyncRange(off); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("wal: preallocate %s: %w", path, err)
	}
	select {
	case <-cancel:
		if err := sp.Discard(); err != nil {
			return nil, &vfs.TempFileError{Op: "write", Err: errCancelled, RemoveErr: err}
		}
		return nil, errCancelled
	default:
	}
	if _, err := sp.File().Seek(SegmentHeaderSize, io.SeekStart); err != nil {
		return nil, fmt.Errorf("wal: preallocate %s: %w", path, errors.Join(bare(err), sp.Discard()))
	}
	return sp, nil
}

// drop removes a spare that was never used, and reports whether there
// was one.
func (p *preallocator) drop() (bool, error) {
	sp := p.ready.Swap(nil)
	if sp == nil {
		return false, nil
	}
	if err := sp.Discard(); err != nil {
		return true, fmt.Errorf("wal: remove unused spare %s: %w", sp.Name(), err)
	}
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
