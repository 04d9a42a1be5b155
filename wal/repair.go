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

// RepairReport describes what recovery removed from a log directory.
type RepairReport struct {
	// TornBytes is the size of a torn tail truncated from the last
	// segment. Dropping a torn tail is normal crash recovery and happens
	// with or without repair.
	TornBytes int64

	// Truncated reports whether corruption was found and the log was cut
	// there. The fields below describe the cut.
	Truncated bool
	// File and Offset locate the first bad record; the log now ends just
	// before it. Reason says what was wrong.
	File   string
	Offset int64
	Reason string
	// LastLSN is the LSN of the last record kept (0 if none).
	LastLSN uint64
	// BytesDropped counts the bytes removed at and after the cut, including
	// whole segments removed.
	BytesDropped int64
	// RecordsDropped counts the records that could still be decoded in the
	// removed bytes (best effort: damaged records are not counted).
	RecordsDropped int64
	// SegmentsRemoved lists the segment files deleted by the cut.
	SegmentsRemoved []string
}

// Repair runs recovery on the log in dir with repair enabled, without
// opening the log for writing: a torn tail is truncated and, if a corrupt
// record is found anywhere, the log is cut just before it and every later
// segment is removed. It takes the directory's lock, so it fails with
// vfs.ErrLocked while a Log has the directory open. A nil logger discards
// log output.
func Repair(fs vfs.FS, dir string, logger *slog.Logger) (RepairReport, error) {
	if fs == nil {
		fs = vfs.Default
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, err := fs.Stat(dir); err != nil {
		return RepairReport{}, fmt.Errorf("wal: repair: %w", err)
	}
	lock, err := fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return RepairReport{}, fmt.Errorf("wal: repair %s: %w", dir, err)
	}
	rec, err := recoverLog(fs, dir, true, nil, logger)
	return rec.report, errors.Join(err, lock.Close())
}

// recovered is the state of a log directory after recovery.
type recovered struct {
	segs    []segment // remaining segments, in LSN order
	last    uint64    // LSN of the last record (0 if the log is empty)
	next    uint64    // LSN the next record gets
	records int64     // records found
	end     int64     // offset just past the last record of the last segment
	report  RepairReport
}

// recoverLog validates every segment in dir. It checks every record's
// checksum (and check, if not nil) and that LSNs are consecutive within and across segments,
// truncates a torn tail of the last segment, and either fails with a
// *CorruptError at the first bad record or, with repair, cuts the log there.
func recoverLog(fs vfs.FS, dir string, repair bool, check func(Record) error, logger *slog.Logger) (recovered, error) {
	var rec recovered
	segs, temps, err := listSegments(fs, dir)
	if err != nil {
		return rec, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	for _, t := range temps {
		if err := fs.Remove(t); err != nil {
			return rec, fmt.Errorf("wal: remove leftover %s: %w", t, err)
		}
		logger.Info("wal: removed leftover temporary segment", "file", t)
	}
	if len(temps) > 0 {
		if err := fs.SyncDir(dir); err != nil {
			return rec, fmt.Errorf("wal: sync %s: %w", dir, err)
		}
	}
	if len(segs) == 0 {
		rec.next = 1
		return rec, nil
	}
	expected := segs[0].first
	for i, seg := range segs {
		isLast := i == len(segs)-1
		var ce *CorruptError
		var res scanResult
		if err := checkLSNLimit(seg, 0); err != nil {
			return rec, err
		}
		if seg.first != expected {
			ce = misnamed(seg, expected)
		} else {
			res, err = scanSegment(fs, seg, 0, check, nil)
			if err != nil {
				return rec, err
			}
			if err := checkLSNLimit(seg, res.last); err != nil {
				return rec, err
			}
			rec.records += res.records
			switch {
			case res.corrupt != nil:
				ce = res.corrupt
			case res.torn && isLast:
				dropped, err := dropTornTail(fs, dir, seg, res, logger)
				if err != nil {
					return rec, err
				}
				rec.report.TornBytes = dropped
				if res.end == 0 {
					segs = segs[:i]
				}
			case res.torn:
				ce = tornInside(seg, res, "damaged record at the end of a segment that is not the last")
			}
		}
		if ce != nil {
			if !repair {
				return rec, ce
			}
			if err := cutLog(fs, dir, segs[i:], ce, &rec.report, logger); err != nil {
				return rec, err
			}
			if ce.Offset < SegmentHeaderSize {
				segs = segs[:i]
			} else {
				segs = segs[:i+1]
				rec.end = ce.Offset
			}
			rec.report.LastLSN = ce.LSN - 1
			expected = ce.LSN
			break
		}
		expected = res.last + 1
		if res.end >= SegmentHeaderSize { // else the segment was removed
			rec.end = res.end
		}
	}
	rec.segs = segs
	rec.next = expected
	rec.last = expected - 1
	if !rec.report.Truncated {
		rec.report.LastLSN = rec.last
	}
	return rec, nil
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

// cutLog removes everything from the bad spot described by ce onwards:
// segs[0] is the segment holding it, segs[1:] are removed whole. Later
// segments are removed newest first and the damaged segment is truncated
// last, so an interrupted repair leaves a log that a new repair fixes.
func cutLog(fs vfs.FS, dir string, segs []segment, ce *CorruptError, rep *RepairReport, logger *slog.Logger) error {
	lastGood := ce.LSN - 1
	rep.Truncated = true
	rep.File, rep.Offset, rep.Reason = ce.File, ce.Offset, ce.Reason
	bad := segs[0]
	if err := countDropped(fs, bad.path, ce.Offset, ce.Offset, lastGood, rep); err != nil {
		return err
	}
	for _, s := range segs[1:] {
		if err := countDropped(fs, s.path, 0, SegmentHeaderSize, s.first-1, rep); err != nil {
			return err
		}
	}
	for i := len(segs) - 1; i >= 1; i-- {
		if err := fs.Remove(segs[i].path); err != nil {
			return fmt.Errorf("wal: repair: %w", err)
		}
		rep.SegmentsRemoved = append(rep.SegmentsRemoved, segs[i].path)
	}
	if ce.Offset < SegmentHeaderSize {
		if err := fs.Remove(bad.path); err != nil {
			return fmt.Errorf("wal: repair: %w", err)
		}
		rep.SegmentsRemoved = append(rep.SegmentsRemoved, bad.path)
	} else if err := truncateFile(fs, bad.path, ce.Offset); err != nil {
		return err
	}
	if err := fs.SyncDir(dir); err != nil {
		return fmt.Errorf("wal: sync %s: %w", dir, err)
	}
	logger.Warn("wal: repaired corrupt log",
		"file", ce.File, "offset", ce.Offset, "reason", ce.Reason,
		"bytes_dropped", rep.BytesDropped, "records_dropped", rep.RecordsDropped,
		"segments_removed", len(rep.SegmentsRemoved))
	return nil
}

// tornBytes is the size of the torn tail of seg, as tailCounter counts
// it, read in chunks: the tail of a preallocated segment can be most of it.
func tornBytes(fs vfs.FS, seg segment, res scanResult) (int64, error) {
	f, err := fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	var tc tailCounter
	if _, err := io.Copy(&tc, io.NewSectionReader(f, res.end, math.MaxInt64-res.end)); err != nil {
		return 0, fmt.Errorf("wal: read %s: %w", seg.path, err)
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

// countDropped adds to rep what a repair drops of the file at path from
// offset off on: the data bytes (as tailCounter counts them) and the
// records that still decode from offset frames on, after lastGood. The file
// is read in chunks and scanned in place, so memory does not depend on its
// size.
func countDropped(fs vfs.FS, path string, off, frames int64, lastGood uint64, rep *RepairReport) error {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("wal: stat %s: %w", path, err)
	}
	var tc tailCounter
	if _, err := io.Copy(&tc, io.NewSectionReader(f, off, max(fi.Size()-off, 0))); err != nil {
		return fmt.Errorf("wal: read %s: %w", path, err)
	}
	rep.BytesDropped += tc.data()
	if fi.Size() >= frames {
		n, err := newFrameScanner(f, fi.Size()).count(frames, lastGood)
		if err != nil {
			return fmt.Errorf("wal: read %s: %w", path, err)
		}
		rep.RecordsDropped += n
	}
	return nil
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
