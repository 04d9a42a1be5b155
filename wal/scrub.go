package wal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// TypeStats count the records of one type.
type TypeStats struct {
	Records int64 // records of this type
	Bytes   int64 // their payload bytes
}

// ScrubReport describes a Scrub pass over the closed segments.
type ScrubReport struct {
	Segments int                 // closed segments verified
	Records  int64               // records verified
	Bytes    int64               // payload bytes verified
	ByType   map[uint8]TypeStats // per record type
	// Last is the first LSN of the last segment verified: pass it as
	// after to continue an incremental scrub. Done reports that no closed
	// segment after it remains.
	Last uint64
	Done bool
}

// Scrub re-reads every closed segment (all but the active one) and
// verifies every record's checksum, length and LSN sequence (and
// Options.CheckRecord), without
// stopping writers. It returns a *CorruptError (errors.Is ErrCorrupt) for
// the first damaged record it finds, and ctx.Err() when cancelled between
// segments. A segment removed by TruncateBefore while Scrub runs is
// skipped (Scrub does not hold TruncateBefore up). Scrub is ScrubStep over
// every closed segment.
func (l *Log) Scrub(ctx context.Context) (ScrubReport, error) {
	return l.ScrubStep(ctx, 0, 0)
}

// ScrubStep verifies, as Scrub does, at most max closed segments (0: no
// limit) whose first LSN is greater than after. Background scrubbing uses
// it to spread a pass over many small steps.
func (l *Log) ScrubStep(ctx context.Context, after uint64, max int) (ScrubReport, error) {
	rep := ScrubReport{ByType: map[uint8]TypeStats{}, Last: after}
	var byType [256]TypeStats
	defer func() {
		for t, st := range byType {
			if st.Records > 0 {
				rep.ByType[uint8(t)] = st
			}
		}
	}()
	// No replayMu: a scrub must not hold up TruncateBefore (a checkpoint's
	// retention) for as long as it reads. A segment removed meanwhile is
	// skipped; removal goes oldest first, so it is never followed by one
	// that was scanned.
	segs, _, err := l.segments()
	if err != nil {
		return rep, err
	}
	segs = segs[:len(segs)-1] // closed segments only
	start := 0
	for start < len(segs) && segs[start].first <= after {
		start++
	}
	segs = segs[start:]
	rep.Done = max <= 0 || len(segs) <= max
	if !rep.Done {
		segs = segs[:max+1] // one more, to check the LSN sequence
	}
	for i, seg := range segs {
		if max > 0 && i == max {
			break
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		res, err := scanSegment(l.fs, seg, 0, l.check, func(r Record) error {
			st := &byType[r.Type]
			st.Records++
			st.Bytes += int64(len(r.Payload))
			rep.Bytes += int64(len(r.Payload))
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			rep.Last = seg.first // removed by TruncateBefore meanwhile
			continue
		}
		if err != nil {
			return rep, err
		}
		rep.Records += res.records
		if res.corrupt != nil {
			return rep, res.corrupt
		}
		if res.torn {
			return rep, tornInside(seg, res, "damaged record in a closed segment")
		}
		if i+1 < len(segs) && res.last+1 != segs[i+1].first {
			return rep, &CorruptError{File: seg.path, Offset: res.end, LSN: res.last + 1,
				Reason: fmt.Sprintf("segment ends at LSN %d but the next one starts at %d", res.last, segs[i+1].first)}
		}
		rep.Segments++
		rep.Last = seg.first
	}
	return rep, nil
}
