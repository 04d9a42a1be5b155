package wal

import (
	"errors"
	"fmt"
	"slices"
)

// Replay calls fn, in LSN order, for every record in the log with
// LSN >= fromLSN that had been written when Replay started. The payload is
// only valid during the call. Records are read back from the segment files
// and verified again; damage yields a *CorruptError. Records removed by
// TruncateBefore are skipped silently (see FirstLSN). An error from fn stops
// the replay and is returned as is. fn must not call TruncateBefore.
//
// Recovery does not need Replay: Recover hands out the records as Open
// reads them.
func (l *Log) Replay(fromLSN uint64, fn func(lsn uint64, typ uint8, payload []byte) error) error {
	l.replayMu.RLock()
	defer l.replayMu.RUnlock()
	segs, limit, err := l.segments()
	if err != nil {
		return err
	}
	fromLSN = max(fromLSN, 1)
	if fromLSN > limit {
		return nil
	}
	start := 0
	for i, s := range segs {
		if s.first <= fromLSN {
			start = i
		}
	}
	expected := segs[start].first
	for _, seg := range segs[start:] {
		if seg.first > limit {
			break
		}
		if seg.first != expected {
			return misnamed(seg, expected)
		}
		res, err := scanSegment(l.fs, seg, limit, nil, func(r Record) error {
			if r.LSN < fromLSN {
				return nil
			}
			return fn(r.LSN, r.Type, r.Payload)
		})
		if err != nil {
			return err
		}
		if res.corrupt != nil {
			return res.corrupt
		}
		if res.last >= limit {
			return nil
		}
		if res.torn {
			return tornInside(seg, res, "damaged record before the end of the log")
		}
		expected = res.last + 1
	}
	return &CorruptError{File: segs[len(segs)-1].path, LSN: expected,
		Reason: fmt.Sprintf("log ends before LSN %d", limit)}
}

// TruncateBefore removes the segments all of whose records have LSN < lsn,
// oldest first, then fsyncs the directory. It never removes the active
// (last) segment, so records with LSN >= lsn are always kept.
func (l *Log) TruncateBefore(lsn uint64) error {
	l.replayMu.Lock()
	defer l.replayMu.Unlock()
	segs, _, err := l.segments()
	if err != nil {
		return err
	}
	n := 0
	for n < len(segs)-1 && segs[n+1].first <= lsn {
		n++
	}
	if n == 0 {
		return nil
	}
	removed := 0
	for ; removed < n; removed++ {
		if err = l.fs.Remove(segs[removed].path); err != nil {
			err = fmt.Errorf("wal: truncate: %w", err)
			break
		}
	}
	l.mu.Lock()
	l.st.segs = l.st.segs[removed:]
	l.mu.Unlock()
	if removed > 0 {
		if serr := l.fs.SyncDir(l.dir); serr != nil {
			err = errors.Join(err, fmt.Errorf("wal: truncate: sync %s: %w", l.dir, serr))
		}
	}
	return err
}

// FirstLSN returns the first LSN of the oldest segment still present. Every
// record from FirstLSN to LastLSN is in the log.
func (l *Log) FirstLSN() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.segs[0].first
}

// segments returns a copy of the segment list and the last LSN written,
// read together, or ErrClosed once Close has been called.
func (l *Log) segments() ([]segment, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.closing {
		return nil, 0, ErrClosed
	}
	return slices.Clone(l.st.segs), l.prog.written.Load(), nil
}
