package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cidstore/cidstore/vfs"
)

const (
	segmentSuffix = ".wal"
	tempSuffix    = ".tmp"
	lockName      = "LOCK"
)

// segment identifies one segment file.
type segment struct {
	first uint64 // LSN of the first record (the number in the file name)
	path  string
}

// segmentName returns the file name of the segment whose first LSN is first.
func segmentName(first uint64) string {
	return fmt.Sprintf("%020d%s", first, segmentSuffix)
}

// IsSegmentName reports whether name is the name of a segment file
// (%020d.wal with a first LSN of at least 1).
func IsSegmentName(name string) bool {
	_, ok := parseSegmentName(name)
	return ok
}

// parseSegmentName parses a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	num, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(num) != 20 {
		return 0, false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// listSegments returns the segments in dir in LSN order and the paths of
// temporary files left behind by an interrupted segment creation.
func listSegments(fs vfs.FS, dir string) (segs []segment, temps []string, err error) {
	ents, err := fs.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		name := e.Name()
		first, isSeg := parseSegmentName(name)
		if !e.Type().IsRegular() {
			if isSeg {
				// Skipping it would leave its records out of the log
				// without a word.
				return nil, nil, fmt.Errorf("segment %s is not a regular file", filepath.Join(dir, name))
			}
			continue
		}
		if isSeg {
			segs = append(segs, segment{first: first, path: filepath.Join(dir, name)})
			continue
		}
		if base, ok := strings.CutSuffix(name, tempSuffix); ok {
			if _, ok := parseSegmentName(base); ok {
				temps = append(temps, filepath.Join(dir, name))
			}
		}
	}
	// ReadDir sorts by name and names are zero-padded, so segs is in LSN
	// order already.
	return segs, temps, nil
}

// createSegment creates the segment for first durably: it writes the header
// to a temporary file, fsyncs it, renames it into place and fsyncs the
// directory. The returned file is open for writing, positioned after the
// header.
func createSegment(fs vfs.FS, dir string, first uint64) (vfs.File, string, error) {
	path := filepath.Join(dir, segmentName(first))
	t, err := vfs.CreateTemp(fs, path+tempSuffix, writeSegmentHeader)
	if err == nil {
		err = t.Install(path)
	}
	if err != nil {
		// Errors name the segment: the temporary file is gone by the
		// time anyone reads them.
		return nil, "", fmt.Errorf("wal: create segment %s: %w", path, err)
	}
	return t.File(), path, nil
}

// writeSegmentHeader writes the segment header to a new segment file.
func writeSegmentHeader(f vfs.File) error {
	_, err := f.Write(segmentHeader[:])
	return err
}

// scanResult describes one segment after reading it.
type scanResult struct {
	records int64
	last    uint64 // LSN of the last good record (first-1 if none)
	end     int64  // offset just past the last good record
	size    int64  // bytes read from the file (its size)
	// Exactly one of the following describes how the segment ended:
	torn    bool // damaged tail, nothing valid after it (err is nil)
	corrupt *CorruptError
}

// misnamed describes a segment whose name does not carry the LSN that
// follows the previous segment's last record.
func misnamed(seg segment, expected uint64) *CorruptError {
	return &CorruptError{File: seg.path, Offset: 0, LSN: expected,
		Reason: fmt.Sprintf("segment name says first LSN %d", seg.first)}
}

// tornInside describes a segment that ends in a damaged record where the
// log must go on: reason says why it must.
func tornInside(seg segment, res scanResult, reason string) *CorruptError {
	return &CorruptError{File: seg.path, Offset: res.end, LSN: res.last + 1, Reason: reason}
}

// errBadHeader marks a segment whose header is missing or wrong.
var errBadHeader = errors.New("bad segment header")

// badRecord describes a record that passes its checksum but that check
// (Options.CheckRecord) rejects.
func badRecord(seg segment, off int64, rec Record, err error) *CorruptError {
	return &CorruptError{File: seg.path, Offset: off, LSN: rec.LSN,
		Reason: fmt.Sprintf("record of type %d: %v", rec.Type, err)}
}

// segmentReader reads the records of one segment in order, expecting the
// first to carry seg.first. A record that passes its checksum but that
// check (if not nil) rejects is damage at its offset. Once next reports the
// end, res describes how the segment ended.
type segmentReader struct {
	seg   segment
	f     vfs.File
	r     *Reader
	check func(Record) error
	res   scanResult
	done  bool
}

// openSegment opens seg for reading and checks its header. A bad header
// ends the segment before its first record (see res). reuse, if not nil,
// is the Reader of a segment read before, whose buffers it takes over.
func openSegment(fs vfs.FS, seg segment, check func(Record) error, reuse *Reader) (*segmentReader, error) {
	s := &segmentReader{seg: seg, check: check, res: scanResult{last: seg.first - 1, end: SegmentHeaderSize}}
	f, err := fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: open segment: %w", err)
	}
	s.f = f
	var hdr [SegmentHeaderSize]byte
	n, err := io.ReadFull(f, hdr[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("wal: read segment header %s: %w", seg.path, errors.Join(err, f.Close()))
	}
	if n == SegmentHeaderSize && hdr == segmentHeader {
		s.r = newSegmentReader(f, seg.path, seg.first, reuse)
		return s, nil
	}
	s.done = true
	if err := s.badHeader(hdr[:n]); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return s, nil
}

// badHeader describes in res a segment whose header, of which the file
// holds hdr, is missing or wrong.
func (s *segmentReader) badHeader(hdr []byte) error {
	res, seg, f := &s.res, s.seg, s.f
	res.end = 0
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("wal: stat segment: %w", err)
	}
	res.size = fi.Size()
	// A header cut short by a crash (a prefix of the real header, or
	// nothing but zeros) is a torn tail if this is the last segment; the
	// caller decides. The zeros are checked as they stream past, up to
	// the first byte that is not zero.
	torn := res.size == int64(len(hdr)) && bytes.Equal(hdr, segmentHeader[:len(hdr)])
	if !torn {
		_, err := io.Copy(zeroChecker{}, io.NewSectionReader(f, 0, res.size))
		if err != nil && err != errNonZero {
			return fmt.Errorf("wal: read segment %s: %w", seg.path, err)
		}
		torn = err == nil
	}
	if torn {
		res.torn = true
	} else {
		res.corrupt = &CorruptError{File: seg.path, Offset: 0, LSN: seg.first, Reason: errBadHeader.Error()}
	}
	return nil
}

// next returns the next good record (ok), or reports the end of the
// segment (not ok; res says how it ended). err is an I/O error.
func (s *segmentReader) next() (rec Record, ok bool, err error) {
	if s.done {
		return Record{}, false, nil
	}
	res := &s.res
	rec, err = s.r.Next()
	start := res.end
	res.end = SegmentHeaderSize + s.r.Offset()
	if err == nil && s.check != nil {
		if cerr := s.check(rec); cerr != nil {
			res.end = start
			err = badRecord(s.seg, start, rec, cerr)
		}
	}
	if err == nil {
		res.records++
		res.last = rec.LSN
		return rec, true, nil
	}
	s.done = true
	fi, serr := s.f.Stat()
	if serr != nil {
		return Record{}, false, fmt.Errorf("wal: stat segment: %w", serr)
	}
	res.size = fi.Size()
	var ce *CorruptError
	switch {
	case err == io.EOF:
	case err == ErrTorn:
		res.torn = true
	case errors.As(err, &ce):
		res.corrupt = ce
	default:
		return Record{}, false, err
	}
	return Record{}, false, nil
}

// close closes the segment file.
func (s *segmentReader) close() error { return s.f.Close() }

// scanSegment reads the segment seg (see segmentReader) and calls fn (if
// not nil) for every good record. Reading stops after the record with LSN
// stop when stop is not 0. An error from fn or from I/O is returned as is;
// damage is described in the scanResult.
func scanSegment(fs vfs.FS, seg segment, stop uint64, check, fn func(Record) error) (scanResult, error) {
	s, err := openSegment(fs, seg, check, nil)
	if err != nil {
		return scanResult{last: seg.first - 1}, err
	}
	defer s.close()
	for {
		if stop != 0 && s.r != nil && s.res.last >= stop {
			s.res.size = SegmentHeaderSize + s.r.Offset()
			return s.res, nil
		}
		rec, ok, err := s.next()
		if err != nil || !ok {
			return s.res, err
		}
		if fn != nil {
			if err := fn(rec); err != nil {
				return s.res, err
			}
		}
	}
}

// errNonZero stops a zeroChecker at the first byte that is not zero.
var errNonZero = errors.New("non-zero byte")

// zeroChecker is an io.Writer that fails with errNonZero on the first
// write holding a byte that is not zero: io.Copy into it tells whether a
// reader holds only zeros, reading no further than the first other byte.
type zeroChecker struct{}

func (zeroChecker) Write(p []byte) (int, error) {
	if !allZero(p) {
		return 0, errNonZero
	}
	return len(p), nil
}

// allZero reports whether every byte of b is zero. A zero first byte and b
// equal to itself shifted by one mean every byte equals the first; the
// comparison runs at memory speed, which matters for the megabytes of a
// preallocated segment's unused tail.
func allZero(b []byte) bool {
	return len(b) == 0 || (b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1]))
}
