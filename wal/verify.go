package wal

import (
	"fmt"

	"github.com/cidstore/cidstore/vfs"
)

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Path      string
	FirstLSN  uint64 // from the file name
	LastLSN   uint64 // of the last valid record (FirstLSN-1 if none)
	Records   int64
	Size      int64 // file size in bytes
	Used      int64 // bytes up to the end of the last valid record (the rest is a torn tail or preallocated zeros)
	TornBytes int64 // bytes of a torn tail after the last valid record (last segment only)
}

// VerifyReport describes a log directory.
type VerifyReport struct {
	Segments []SegmentInfo
	Records  int64
}

// Verify reads every segment in dir and checks every record, as Open
// does (check, if not nil, as Options.CheckRecord), without changing
// anything and without taking the directory lock
// (so it can inspect a directory in use; a segment being written may then
// show a torn tail). A torn tail of the last segment is reported in its
// SegmentInfo, not as an error; any other damage returns a *CorruptError
// together with the report of the segments before it.
func Verify(fs vfs.FS, dir string, check func(Record) error) (VerifyReport, error) {
	if fs == nil {
		fs = vfs.Default
	}
	var rep VerifyReport
	segs, _, err := listSegments(fs, dir)
	if err != nil {
		return rep, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var expected uint64
	for i, seg := range segs {
		if i > 0 && seg.first != expected {
			return rep, misnamed(seg, expected)
		}
		if err := checkLSNLimit(seg, 0); err != nil {
			return rep, err
		}
		res, err := scanSegment(fs, seg, 0, check, nil)
		if err != nil {
			return rep, err
		}
		if err := checkLSNLimit(seg, res.last); err != nil {
			return rep, err
		}
		info := SegmentInfo{Path: seg.path, FirstLSN: seg.first, LastLSN: res.last, Records: res.records, Size: res.size, Used: res.end}
		switch {
		case res.corrupt != nil:
			return rep, res.corrupt
		case res.torn && i == len(segs)-1:
			if info.TornBytes, err = tornBytes(fs, seg, res); err != nil {
				return rep, err
			}
		case res.torn:
			return rep, tornInside(seg, res, "damaged record at the end of a segment that is not the last")
		}
		rep.Segments = append(rep.Segments, info)
		rep.Records += res.records
		expected = res.last + 1
	}
	return rep, nil
}

// Span returns the LSNs of the first and last records the verified log
// holds, as Open would find them (a torn tail excluded): last is first-1
// when it holds none, and an empty directory reads as 1, 0, as a new log
// starts.
func (r VerifyReport) Span() (first, last uint64) {
	if len(r.Segments) == 0 {
		return 1, 0
	}
	return r.Segments[0].FirstLSN, r.Segments[len(r.Segments)-1].LastLSN
}
