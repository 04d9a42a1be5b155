package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"github.com/cidstore/cidstore/vfs"
)

// Recovery at Open: one pass over the segments, in order, that validates
// every record, hands the records to a caller that rebuilds its state from
// them (Recovery.Next), and drops a torn tail of the last segment. The
// package documentation says what is torn and what is corrupt; offline
// repair is in repair.go.

// Recovery is a log being opened: the one pass over its segments that
// validates them, handing every record to the caller on the way, so that
// a caller that rebuilds its state from the log reads it once. Recover
// starts it; Next returns the records in LSN order; Finish reads what Next
// has not, drops a torn tail as Open does and returns the log, open for
// appending. A Recovery is not safe for concurrent use.
type Recovery struct {
	opts     Options
	lock     io.Closer
	report   RepairReport // what recovery dropped: a repair first, and a torn tail
	repaired bool         // a repair came first: damage now is its failure
	segs     []segment    // in LSN order; a last one whose header is torn leaves
	first    uint64       // LSN of the first record the log holds or would hold

	// The pass.
	i        int            // index in segs of the segment being read
	cur      *segmentReader // its reader; nil between segments
	rd       *Reader        // the last segment's Reader, whose buffers the next one reuses
	expected uint64         // LSN of the next record
	end      int64          // offset just past the last record of the last segment read
	err      error          // sticky: io.EOF once the pass is over
	finished bool           // Finish or Close was called
}

// Recover opens the log in opts.Dir as Open does (creating the directory,
// taking its lock unless opts.NoLock or opts.ReadOnly, removing leftover
// temporary files, and repairing it first with opts.Repair), but reads no
// record yet: the caller reads them with Next and ends the recovery with
// Finish, or abandons it with Close.
func Recover(opts Options) (*Recovery, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	fs, dir := opts.FS, opts.Dir
	var lock io.Closer = nopCloser{}
	if opts.ReadOnly {
		if _, err := fs.Stat(dir); err != nil {
			return nil, fmt.Errorf("wal: open %s: %w", dir, err)
		}
	} else {
		if err := fs.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("wal: create dir: %w", err)
		}
		if !opts.NoLock {
			if lock, err = fs.Lock(filepath.Join(dir, lockName)); err != nil {
				return nil, fmt.Errorf("wal: open %s: %w", dir, err)
			}
		}
		if err := removeLeftoverSpare(fs, dir); err != nil {
			return nil, errors.Join(err, lock.Close())
		}
	}
	var repair *RepairOptions
	if opts.Repair {
		repair = &RepairOptions{Logger: opts.Logger, CheckRecord: opts.CheckRecord}
	}
	r, _, err := newRecovery(opts, lock, repair)
	if err != nil {
		return nil, errors.Join(err, lock.Close())
	}
	return r, nil
}

// nopCloser is the lock of a log that takes none.
type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// newRecovery lists the segments of opts.Dir for a pass and, unless
// opts.ReadOnly, removes the temporary files of segments whose creation a
// crash cut short. With repair, it first repairs the log (repairLog) and
// returns what the repair did even when it fails.
func newRecovery(opts Options, lock io.Closer, repair *RepairOptions) (*Recovery, RepairReport, error) {
	fs, dir := opts.FS, opts.Dir
	r := &Recovery{opts: opts, lock: lock}
	if repair != nil {
		rep, err := repairLog(fs, dir, *repair)
		if err != nil {
			return nil, rep, err
		}
		r.report, r.repaired = rep, true
	}
	segs, temps, err := listSegments(fs, dir)
	if err != nil {
		return nil, r.report, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	if !opts.ReadOnly {
		for _, t := range temps {
			if err := fs.Remove(t); err != nil {
				return nil, r.report, fmt.Errorf("wal: remove leftover %s: %w", t, err)
			}
			opts.Logger.Info("wal: removed leftover temporary segment", "file", t)
		}
		if len(temps) > 0 {
			if err := fs.SyncDir(dir); err != nil {
				return nil, r.report, fmt.Errorf("wal: sync %s: %w", dir, err)
			}
		}
	}
	r.segs, r.first = segs, 1
	if len(segs) > 0 {
		r.first = segs[0].first
	}
	r.expected = r.first
	return r, r.report, nil
}

// FirstLSN returns the LSN of the first record the log holds, from the
// name of its oldest segment, or the LSN its first record will get if it
// holds none. It is known before any record is read.
func (r *Recovery) FirstLSN() uint64 { return r.first }

// Next returns the next record of the log, in LSN order, after checking it
// (its checksum, its LSN, and Options.CheckRecord), or io.EOF after the
// last. The payload is only valid until the next call. Damage that is not
// a torn tail ends the pass with a *CorruptError, as it fails Open; a torn
// tail ends it with io.EOF, and is dropped (unless Options.ReadOnly) when
// Next reaches it. An error is sticky.
func (r *Recovery) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		if r.cur != nil { // the pass is over: nothing reads the segment again
			if cerr := r.cur.close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
			r.cur = nil
		}
		r.err = r.wrap(err)
		return Record{}, r.err
	}
	return rec, nil
}

// wrap says that an error after a repair is the repair's failure.
func (r *Recovery) wrap(err error) error {
	if !r.repaired || err == io.EOF {
		return err
	}
	return fmt.Errorf("wal: repair left a log that does not validate: %w", err)
}

func (r *Recovery) next() (Record, error) {
	for {
		if r.cur == nil {
			if r.i >= len(r.segs) {
				return Record{}, io.EOF
			}
			seg := r.segs[r.i]
			if err := checkLSNLimit(seg, 0); err != nil {
				return Record{}, err
			}
			if seg.first != r.expected {
				return Record{}, misnamed(seg, r.expected)
			}
			cur, err := openSegment(r.opts.FS, seg, r.opts.CheckRecord, r.rd)
			if err != nil {
				return Record{}, err
			}
			r.cur = cur
		}
		rec, ok, err := r.cur.next()
		if err != nil {
			return Record{}, err
		}
		if ok {
			if err := checkLSNLimit(r.cur.seg, rec.LSN); err != nil {
				return Record{}, err
			}
			return rec, nil
		}
		if err := r.endSegment(); err != nil {
			return Record{}, err
		}
	}
}

// endSegment closes the segment just read and decides what its end means:
// corruption, a torn tail (dropped, or left out of a read-only log), or
// the start of the next segment.
func (r *Recovery) endSegment() error {
	cur := r.cur
	r.cur = nil
	if cur.r != nil {
		r.rd = cur.r
	}
	if err := cur.close(); err != nil {
		return fmt.Errorf("wal: close %s: %w", cur.seg.path, err)
	}
	seg, res := cur.seg, cur.res
	switch {
	case res.corrupt != nil:
		return res.corrupt
	case res.torn && r.i == len(r.segs)-1:
		drop := dropTornTail
		if r.opts.ReadOnly {
			drop = countTornTail
		}
		dropped, err := drop(r.opts.FS, r.opts.Dir, seg, res, r.opts.Logger)
		if err != nil {
			return err
		}
		r.report.TornBytes = dropped
		if res.end == 0 {
			r.segs = r.segs[:r.i]
		}
	case res.torn:
		return tornInside(seg, res, "damaged record at the end of a segment that is not the last")
	}
	r.expected = res.last + 1
	if res.end >= SegmentHeaderSize { // else the segment was removed
		r.end = res.end
	}
	r.i++
	return nil
}

// Rewind starts the pass again at the first record, for a caller that
// needs records Next has already returned; they are read again. It fails
// only with the error that ended the pass, if the log is damaged.
func (r *Recovery) Rewind() error {
	if r.finished {
		return ErrClosed
	}
	if r.err != nil && r.err != io.EOF {
		return r.err
	}
	if r.cur != nil {
		if err := r.cur.close(); err != nil {
			r.err = fmt.Errorf("wal: close %s: %w", r.cur.seg.path, err)
			return r.err
		}
		r.cur = nil
	}
	r.i, r.expected, r.end, r.err = 0, r.first, 0, nil
	return nil
}

// Finish ends the recovery: it reads the records Next has not returned,
// checking them, drops a torn tail, and returns the log, open for
// appending (or read-only, with Options.ReadOnly). On failure the
// directory lock is released and the log is not opened. Finish or Close
// may be called once.
func (r *Recovery) Finish() (*Log, error) {
	if r.finished {
		return nil, ErrClosed
	}
	rec, err := r.readAll()
	var l *Log
	if err == nil {
		l, err = start(r.opts, r.lock, rec)
	}
	if err != nil {
		return nil, errors.Join(err, r.Close())
	}
	r.finished = true
	return l, nil
}

// Close abandons a recovery that Finish has not ended: it releases the
// directory lock and opens nothing. What the pass has done stays done (a
// torn tail it reached is gone). After Finish, Close does nothing.
func (r *Recovery) Close() error {
	if r.finished {
		return nil
	}
	r.finished = true
	var err error
	if r.cur != nil {
		err = r.cur.close()
		r.cur = nil
	}
	return errors.Join(err, r.lock.Close())
}

// readAll reads what is left of the pass and returns what it found.
func (r *Recovery) readAll() (recovered, error) {
	for r.err == nil {
		r.Next()
	}
	if r.err != io.EOF {
		return recovered{report: r.report}, r.err
	}
	rec := recovered{
		segs: r.segs, next: r.expected, last: r.expected - 1,
		end: r.end, report: r.report,
	}
	if r.repaired {
		rec.report.FirstLSN = rec.first()
	}
	rec.report.LastLSN = rec.last
	return rec, nil
}

// recovered is the state of a log directory after recovery.
type recovered struct {
	segs   []segment // remaining segments, in LSN order
	last   uint64    // LSN of the last record (0 if the log is empty)
	next   uint64    // LSN the next record gets
	end    int64     // offset just past the last record of the last segment
	report RepairReport
}

// first is the LSN of the first record the log holds (or would hold).
func (r recovered) first() uint64 {
	if len(r.segs) == 0 {
		return r.next
	}
	return r.segs[0].first
}

// dropTornTail truncates the torn tail of the last segment, or removes the
// segment if even its header is torn.
func dropTornTail(fs vfs.FS, dir string, seg segment, res scanResult, logger *slog.Logger) (int64, error) {
	dropped, err := tornBytes(fs, seg, res)
	if err != nil {
		return 0, err
	}
	if res.end == 0 {
		if err := fs.Remove(seg.path); err != nil {
			return 0, fmt.Errorf("wal: remove segment with torn header: %w", err)
		}
		if err := fs.SyncDir(dir); err != nil {
			return 0, fmt.Errorf("wal: sync %s: %w", dir, err)
		}
	} else if err := truncateFile(fs, seg.path, res.end); err != nil {
		return 0, err
	}
	logger.Warn("wal: dropped torn tail of last segment",
		"file", seg.path, "offset", res.end, "bytes", dropped, "last_lsn", res.last)
	return dropped, nil
}

// countTornTail is dropTornTail for a log opened read-only: it only
// counts the torn tail, which the log then ends before.
func countTornTail(fs vfs.FS, _ string, seg segment, res scanResult, _ *slog.Logger) (int64, error) {
	return tornBytes(fs, seg, res)
}

// tornBytes is the size of the torn tail of seg, as tailCounter counts
// it, read in chunks: the tail of a preallocated segment can be most of it.
func tornBytes(fs vfs.FS, seg segment, res scanResult) (int64, error) {
	f, err := fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	return countTail(f, seg.path, res.end, math.MaxInt64-res.end)
}

// countTail reads n bytes of the segment file f at path from off (fewer
// at its end) through a tailCounter and returns how many are data.
func countTail(f io.ReaderAt, path string, off, n int64) (int64, error) {
	var tc tailCounter
	if _, err := io.Copy(&tc, io.NewSectionReader(f, off, n)); err != nil {
		return 0, fmt.Errorf("wal: read %s: %w", path, err)
	}
	return tc.data(), nil
}

// zeroTailMin is the shortest run of trailing zeros that tailCounter takes
// for the unused rest of a preallocated segment rather than for data.
const zeroTailMin = 4096

// tailCounter counts how many bytes of a dropped segment tail, written to
// it in order, are data: all of them, less a run of at least zeroTailMin
// trailing zeros, which is the unused rest of a preallocated segment (or a
// page that never reached the disk), not records.
type tailCounter struct {
	size    int64 // bytes written
	nonZero int64 // offset just past the last non-zero byte
}

func (t *tailCounter) Write(p []byte) (int, error) {
	if !allZero(p) {
		i := len(p) - 1
		for p[i] == 0 {
			i--
		}
		t.nonZero = t.size + int64(i) + 1
	}
	t.size += int64(len(p))
	return len(p), nil
}

func (t *tailCounter) data() int64 {
	if t.size-t.nonZero < zeroTailMin {
		return t.size
	}
	return t.nonZero
}

// truncateFile truncates path to size and fsyncs it.
func truncateFile(fs vfs.FS, path string, size int64) error {
	f, err := fs.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: truncate: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("wal: truncate %s: %w", path, errors.Join(err, f.Close()))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: truncate %s: %w", path, errors.Join(err, f.Close()))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: truncate %s: %w", path, err)
	}
	return nil
}
