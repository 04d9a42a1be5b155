package wal

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/cidstore/cidstore/vfs"
)

// RepairReport describes what recovery removed from a log directory.
type RepairReport struct {
	// TornBytes is the size of a torn tail truncated from the last
	// segment. Dropping a torn tail is normal crash recovery and happens
	// with or without repair.
	TornBytes int64

	// Truncated reports whether repair changed the log beyond a torn
	// tail: it found damage, or a log that does not go on from the
	// caller's cut. The fields below describe what it did.
	Truncated bool
	// Damage lists every damaged spot found, in log order; File, Offset
	// and Reason repeat the first.
	Damage []CorruptError
	File   string
	Offset int64
	Reason string
	// FirstLSN and LastLSN are the LSNs of the first and last record the
	// log keeps (LastLSN = FirstLSN-1: none).
	FirstLSN, LastLSN uint64
	// Dropped lists the runs of intact records that are no longer in the
	// log, in file order. Their bytes remain in the files moved aside.
	Dropped []DroppedRun
	// RecordsCovered counts the dropped records at or below
	// RepairOptions.Cut: the caller holds their effect elsewhere.
	RecordsCovered int64
	// RecordsDropped counts the other dropped records: the log lost
	// them. Damaged records are counted in neither (they cannot be read).
	RecordsDropped int64
	// BytesDropped counts the bytes no longer in the log, other than a
	// torn tail and the zeros of a preallocated segment.
	BytesDropped int64
	// MovedAside lists the files renamed aside (see vfs.MoveAside), by
	// their new names. Repair removes nothing else.
	MovedAside []string
	// Rewritten lists the segments written anew with the intact records
	// kept from a damaged one, whose original is among MovedAside.
	Rewritten []string
	// Created is the empty segment started at Cut+1 when no record after
	// the cut survived ("" if none was needed).
	Created string
}

// DroppedRun is a run of consecutive intact records that repair dropped.
type DroppedRun struct {
	File              string
	FirstLSN, LastLSN uint64
	Covered           bool // at or below the cut
}

// RepairOptions configure Repair.
type RepairOptions struct {
	// Logger receives what repair does; nil discards it.
	Logger *slog.Logger
	// CheckRecord validates records as Options.CheckRecord does.
	CheckRecord func(Record) error
	// HaveCut says that the caller holds the state through LSN Cut
	// elsewhere (a snapshot; Cut 0 is the empty state), so records up to
	// Cut may be dropped and the log must go on from Cut+1. Repair then
	// keeps the longest run of intact, consecutive records that reaches
	// Cut+1, wherever damage lies before it, or, if none does, starts an
	// empty log at Cut+1. Without HaveCut it keeps the run that starts
	// the log.
	HaveCut bool
	Cut     uint64
	// NoLock says that the caller keeps every other writer out of the
	// directory itself, as Options.NoLock does: Repair takes no lock.
	NoLock bool
}

// Repair brings the log in dir into a state that Open accepts, without
// opening it for writing. It reads every segment, skipping over damage
// to find every run of intact records (a record that fails its checksum,
// a bad length, an LSN out of sequence, a record CheckRecord rejects, a
// bad segment header), strings the runs together by LSN, and keeps one
// chain of consecutive records (see RepairOptions.HaveCut); a torn tail
// of the last segment is truncated as Open does. Everything else it moves
// aside: a file that holds nothing kept is renamed to *.corrupt, and a
// segment that holds kept records among dropped bytes is copied aside and
// written anew with only the kept ones. Repair never deletes a file, so a
// stray file named like a segment cannot make it delete real ones, and an
// interrupted repair leaves a log that a new repair finishes.
//
// Repair takes the directory's lock (unless opts.NoLock), so it fails
// with vfs.ErrLocked while a Log has the directory open. On success the
// log validates as Open would check it; Repair never reports success
// otherwise.
func Repair(fs vfs.FS, dir string, opts RepairOptions) (RepairReport, error) {
	if fs == nil {
		fs = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := fs.Stat(dir); err != nil {
		return RepairReport{}, fmt.Errorf("wal: repair: %w", err)
	}
	var lock io.Closer = nopCloser{}
	if !opts.NoLock {
		var err error
		if lock, err = fs.Lock(filepath.Join(dir, lockName)); err != nil {
			return RepairReport{}, fmt.Errorf("wal: repair %s: %w", dir, err)
		}
	}
	rec, err := repairAndRecover(fs, dir, opts)
	return rec.report, errors.Join(err, lock.Close())
}

// repairAndRecover repairs the log (repairLog) and then reads it as Open
// does, which must now succeed.
func repairAndRecover(fs vfs.FS, dir string, opts RepairOptions) (recovered, error) {
	r, rep, err := newRecovery(Options{FS: fs, Dir: dir, CheckRecord: opts.CheckRecord, Logger: opts.Logger},
		nopCloser{}, &opts)
	if err != nil {
		return recovered{report: rep}, err
	}
	return r.readAll()
}

// run is a stretch of consecutive intact records in one segment file:
// the frames in bytes [start, end) carry LSNs first..last (last =
// first-1 and start = end for the empty run of a segment that holds no
// record yet).
type run struct {
	seg         int // index into the scanned segments
	start, end  int64
	first, last uint64
}

func (r run) records() int64 { return int64(r.last + 1 - r.first) }

// segScan is what repair found in one segment file.
type segScan struct {
	seg      segment
	runs0    int   // the segment's index, for its runs
	dataEnd  int64 // offset past the last byte that is not zero padding
	headerOK bool
	runs     []run
	damage   []CorruptError // damage followed by a run
	// tail is the damage after the last run, if any: a bad header (no
	// run at all) or a damaged record. It is a torn tail (tornEnd) when
	// no frame that passes its checksum follows it, which Open truncates
	// where the file ends the log; tornHeader is such a tail at the start
	// of the file (an incomplete header).
	tail                *CorruptError
	tornEnd, tornHeader bool
}

// scanForRepair reads seg and finds every run of intact records in it,
// skipping over damage to the next frame that passes its checksum and
// carries a higher LSN, as the reader does to tell damage from a torn
// tail. Only a damaged segment is read into memory, from its first damage
// on.
func scanForRepair(fs vfs.FS, idx int, seg segment, check func(Record) error) (segScan, error) {
	sc := segScan{seg: seg, runs0: idx}
	res, err := scanSegment(fs, seg, 0, check, nil)
	if err != nil {
		return sc, err
	}
	if res.end < SegmentHeaderSize {
		sc.dataEnd = res.size
		sc.tail = &CorruptError{File: seg.path, LSN: seg.first, Reason: errBadHeader.Error()}
		sc.tornEnd, sc.tornHeader = res.torn, res.torn
		return sc, nil
	}
	sc.dataEnd, sc.headerOK = res.end, true
	if res.records > 0 || (res.corrupt == nil && !res.torn) {
		sc.runs = append(sc.runs, run{idx, SegmentHeaderSize, res.end, seg.first, res.last})
	}
	if res.corrupt == nil && !res.torn {
		return sc, nil
	}
	sc.tail = res.corrupt
	if sc.tail == nil {
		sc.tail = tornInside(seg, res, "damaged record")
	}
	return sc, resync(fs, &sc, res, check)
}

// resync finds the runs of intact records in sc's segment after the
// damage at res.end, through a frameScanner, so that memory does not
// depend on the file's size or on what damaged frames claim.
func resync(fs vfs.FS, sc *segScan, res scanResult, check func(Record) error) error {
	seg := sc.seg
	f, err := fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("wal: stat %s: %w", seg.path, err)
	}
	size := fi.Size()
	data, err := countTail(f, seg.path, res.end, max(size-res.end, 0))
	if err != nil {
		return err
	}
	sc.dataEnd = res.end + data
	fsc := newFrameScanner(f, size)
	var payload []byte
	// frame checks the frame at p: ok if it passes its checksum.
	frame := func(p int64) (lsn uint64, typ uint8, n int64, ok bool, err error) {
		h, err := fsc.header(p)
		if err != nil || h == nil {
			return 0, 0, 0, false, err
		}
		fh := parseFrameHeader(h)
		lsn, typ = fh.lsn, fh.typ
		n, ok, err = fsc.check(p, h)
		return lsn, typ, n, ok, err
	}
	// rejects runs check on the intact frame at p.
	rejects := func(p, n int64, lsn uint64, typ uint8) (error, error) {
		if check == nil {
			return nil, nil
		}
		payload = slices.Grow(payload[:0], int(n-HeaderSize))[:n-HeaderSize]
		if _, err := f.ReadAt(payload, p+HeaderSize); err != nil {
			return nil, fmt.Errorf("wal: read %s: %w", seg.path, err)
		}
		return check(Record{LSN: lsn, Type: typ, Payload: payload}), nil
	}
	// The damage may itself be a frame that passes its checksum (with an
	// LSN out of sequence, or rejected by check): a run may start right
	// there. here says to look at pos itself before scanning past it.
	last := res.last
	rejected := false // a frame that passes its checksum follows the last run
	for pos, here := res.end, true; ; {
		start := int64(-1)
		if here {
			lsn, _, _, ok, err := frame(pos)
			if err != nil {
				return fmt.Errorf("wal: read %s: %w", seg.path, err)
			}
			if ok {
				rejected = true // Open calls it damage, never a torn tail
				if lsn > last {
					start = pos
				}
			}
		}
		if start < 0 {
			if start, err = fsc.find(pos+1, pos, last, true); err != nil {
				return fmt.Errorf("wal: read %s: %w", seg.path, err)
			}
		}
		if start < 0 {
			sc.tornEnd = !rejected
			return nil
		}
		p, first, next := start, uint64(0), uint64(0)
		for p < size {
			lsn, typ, n, ok, err := frame(p)
			if err != nil {
				return fmt.Errorf("wal: read %s: %w", seg.path, err)
			}
			if !ok || (p > start && lsn != next) {
				break
			}
			cerr, err := rejects(p, n, lsn, typ)
			if err != nil {
				return err
			}
			if cerr != nil {
				if p == start {
					rejected = true
					if sc.tail.Offset != start {
						sc.damage = append(sc.damage, *sc.tail)
					}
					sc.tail = badRecord(seg, start, Record{LSN: lsn, Type: typ}, cerr)
				}
				break
			}
			if p == start {
				first = lsn
			}
			next = lsn + 1
			p += n
		}
		if p == start { // the frame found is rejected: look past it
			pos, here = start, false
			continue
		}
		sc.runs = append(sc.runs, run{sc.runs0, start, p, first, next - 1})
		sc.damage = append(sc.damage, *sc.tail)
		sc.tail, last, rejected = nil, next-1, false
		if zero, err := zerosFrom(f, p, size); err != nil || zero {
			return err // nothing but zeros follows
		}
		sc.tail = &CorruptError{File: seg.path, Offset: p, LSN: next, Reason: "damaged record"}
		pos, here = p, true
	}
}

// zerosFrom reports whether the bytes of r from off to end are all zero,
// reading them in chunks.
func zerosFrom(r io.ReaderAt, off, end int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off < end {
		b := buf[:min(int64(len(buf)), end-off)]
		n, err := r.ReadAt(b, off)
		if !allZero(b[:n]) {
			return false, nil
		}
		if n < len(b) {
			if err == io.EOF {
				return true, nil
			}
			return false, err
		}
		off += int64(n)
	}
	return true, nil
}

// chain is a sequence of runs with consecutive LSNs.
type chain struct {
	runs        []run
	first, last uint64
}

// chainRuns strings runs, in file order, into chains of consecutive LSNs:
// a run continues the latest chain that ends just before it, or starts a
// new one.
func chainRuns(runs []run) []*chain {
	var chains []*chain
	for _, r := range runs {
		var c *chain
		for i := len(chains) - 1; i >= 0; i-- {
			if chains[i].last+1 == r.first {
				c = chains[i]
				break
			}
		}
		if c == nil {
			c = &chain{first: r.first}
			chains = append(chains, c)
		}
		c.runs = append(c.runs, r)
		c.last = r.last
	}
	return chains
}

// pickChain returns the chain repair keeps, or nil: with a cut, the
// longest chain that reaches the record after it; without, of the chains
// that start a segment file, the longest that starts at the lowest LSN
// (one that starts after damage may have lost records before it).
func pickChain(chains []*chain, segs []segment, opts RepairOptions) *chain {
	var best *chain
	for _, c := range chains {
		if opts.HaveCut && (c.first > opts.Cut+1 || c.last < opts.Cut) {
			continue
		}
		if r := c.runs[0]; !opts.HaveCut && (r.start != SegmentHeaderSize || r.first != segs[r.seg].first) {
			continue
		}
		if best == nil || (!opts.HaveCut && c.first < best.first) ||
			((opts.HaveCut || c.first == best.first) && c.last > best.last) {
			best = c
		}
	}
	return best
}

// repairLog makes the log in dir one chain of consecutive intact records
// (see Repair), moving aside what it drops. It does not truncate a torn
// tail; recoverLog does that after it.
func repairLog(fs vfs.FS, dir string, opts RepairOptions) (RepairReport, error) {
	var rep RepairReport
	segs, _, err := listSegments(fs, dir)
	if err != nil {
		return rep, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	scans := make([]segScan, len(segs))
	var runs []run
	for i, seg := range segs {
		if err := checkLSNLimit(seg, 0); err != nil {
			return rep, err // what would come after it is not a log: touch nothing
		}
		if scans[i], err = scanForRepair(fs, i, seg, opts.CheckRecord); err != nil {
			return rep, err
		}
		for _, r := range scans[i].runs {
			if err := checkLSNLimit(seg, r.last); err != nil {
				return rep, err
			}
		}
		runs = append(runs, scans[i].runs...)
	}
	chains := chainRuns(runs)
	keep := pickChain(chains, segs, opts)
	// Records dropped after those kept mean that damage, not a crash, ends
	// what is kept: a damaged tail there is not torn.
	droppedAbove := slices.ContainsFunc(runs, func(r run) bool {
		return r.last >= r.first && (keep == nil || r.first > keep.last)
	})
	kept := make([][]run, len(segs)) // per segment, the runs kept
	lastKept := -1
	if keep != nil {
		for _, r := range keep.runs {
			kept[r.seg] = append(kept[r.seg], r)
			lastKept = r.seg
		}
	}
	// What each segment becomes: left as it is (Open reads it), written
	// anew with its kept runs, or moved aside.
	const (
		leave = iota
		rewrite
		aside
	)
	fate := make([]int, len(segs))
	tornLeft := false // a torn tail left for Open to truncate
	for i, sc := range scans {
		k := kept[i]
		switch {
		case len(k) == 0:
			fate[i] = aside
		case len(k) == 1 && k[0].start == SegmentHeaderSize && k[0].first == sc.seg.first && k[0] == sc.runs[len(sc.runs)-1] &&
			(sc.tail == nil || i == lastKept && sc.tornEnd && !droppedAbove):
			// Every later file goes aside, so a torn tail ends the log.
			fate[i] = leave
			tornLeft = sc.tail != nil
		default:
			fate[i] = rewrite
		}
	}
	// An incomplete header of the file that would come next is what a
	// crash leaves as a segment is created; Open removes it.
	if n := len(segs) - 1; n >= 0 && fate[n] == aside && scans[n].tornHeader && !tornLeft && !droppedAbove &&
		keep != nil && segs[n].first == keep.last+1 {
		fate[n], tornLeft = leave, true
	}
	for i, sc := range scans {
		rep.Damage = append(rep.Damage, sc.damage...)
		if sc.tail != nil && fate[i] != leave { // what is left is a torn tail
			rep.Damage = append(rep.Damage, *sc.tail)
		}
	}
	// Every run dropped is damage too: it does not continue what is kept.
	for _, c := range chains {
		if c == keep || c.last < c.first {
			continue
		}
		r := c.runs[0]
		ce := CorruptError{File: segs[r.seg].path, Offset: r.start, LSN: c.first}
		if r.start == SegmentHeaderSize {
			ce.Offset = 0 // the segment as a whole
		}
		if keep != nil {
			ce.Reason = fmt.Sprintf("records %d..%d do not continue the log kept, LSN %d..%d", c.first, c.last, keep.first, keep.last)
		} else {
			ce.Reason = fmt.Sprintf("records %d..%d do not lead on from LSN %d", c.first, c.last, opts.Cut)
		}
		rep.Damage = append(rep.Damage, ce)
	}
	slices.SortStableFunc(rep.Damage, func(a, b CorruptError) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Offset, b.Offset))
	})
	for _, r := range runs {
		if slices.Contains(kept[r.seg], r) || r.last < r.first {
			continue
		}
		covered := opts.HaveCut && r.last <= opts.Cut
		rep.Dropped = append(rep.Dropped, DroppedRun{File: segs[r.seg].path, FirstLSN: r.first, LastLSN: r.last, Covered: covered})
		if covered {
			rep.RecordsCovered += r.records()
		} else {
			rep.RecordsDropped += r.records()
		}
	}
	needEmpty := opts.HaveCut && opts.Cut > 0 && keep == nil
	if len(rep.Damage) == 0 && !needEmpty && !slices.ContainsFunc(fate, func(f int) bool { return f != leave }) {
		return rep, nil // intact: recoverLog drops a torn tail, if any
	}
	rep.Truncated = true
	if len(rep.Damage) > 0 {
		d := rep.Damage[0]
		rep.File, rep.Offset, rep.Reason = d.File, d.Offset, d.Reason
	} else {
		rep.Reason = fmt.Sprintf("the log does not go on from LSN %d", opts.Cut+1)
	}
	// Files that hold nothing kept go aside first, newest first, so that
	// a rewritten segment may take a name one of them had.
	for i := len(segs) - 1; i >= 0; i-- {
		if fate[i] != aside {
			continue
		}
		rep.BytesDropped += scans[i].dataEnd
		if scans[i].headerOK {
			rep.BytesDropped -= SegmentHeaderSize
		}
		if err := moveAside(fs, segs[i].path, &rep); err != nil {
			return rep, err
		}
	}
	for i := range segs {
		if fate[i] == rewrite {
			if err := rewriteSegment(fs, dir, scans[i], kept[i], &rep); err != nil {
				return rep, err
			}
		}
	}
	if needEmpty {
		f, path, err := createSegment(fs, dir, opts.Cut+1)
		if err != nil {
			return rep, err
		}
		if err := f.Close(); err != nil {
			return rep, fmt.Errorf("wal: repair: %w", err)
		}
		rep.Created = path
	}
	opts.Logger.Warn("wal: repaired log", "dir", dir, "first_damage", rep.File, "offset", rep.Offset,
		"reason", rep.Reason, "damaged_spots", len(rep.Damage), "records_dropped", rep.RecordsDropped,
		"records_covered", rep.RecordsCovered, "moved_aside", len(rep.MovedAside), "rewritten", len(rep.Rewritten))
	return rep, nil
}

// moveAside renames path aside and records it.
func moveAside(fs vfs.FS, path string, rep *RepairReport) error {
	to, err := vfs.MoveAside(fs, path)
	if err != nil {
		return fmt.Errorf("wal: repair: move aside %s: %w", path, err)
	}
	rep.MovedAside = append(rep.MovedAside, to)
	return nil
}

// rewriteSegment writes the runs keep of the damaged segment sc as a new
// segment, named by the first LSN they hold, and moves the original
// aside. The new segment is in place before the original goes, so a
// crash in between leaves both, which a new repair sorts out; when it
// takes the original's name, a copy of the original is made aside first.
// Both are streamed, so memory does not depend on the segment's size.
func rewriteSegment(fs vfs.FS, dir string, sc segScan, keep []run, rep *RepairReport) error {
	path := filepath.Join(dir, segmentName(keep[0].first))
	if path == sc.seg.path {
		to, err := vfs.AsideName(fs, path)
		if err == nil {
			err = copyFile(fs, path, to)
		}
		if err != nil {
			return fmt.Errorf("wal: repair: copy %s aside: %w", path, err)
		}
		rep.MovedAside = append(rep.MovedAside, to)
	}
	// Under the temporary name of a segment being created, which Open
	// removes if the repair is cut short.
	err := vfs.WriteFileAtomic(fs, path, path+tempSuffix, func(dst vfs.File) error {
		src, err := fs.OpenFile(sc.seg.path, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := dst.Write(segmentHeader[:]); err != nil {
			return err
		}
		for _, r := range keep {
			if _, err := io.Copy(dst, io.NewSectionReader(src, r.start, r.end-r.start)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wal: repair: write %s: %w", path, err)
	}
	kept := int64(SegmentHeaderSize)
	for _, r := range keep {
		kept += r.end - r.start
	}
	rep.BytesDropped += sc.dataEnd - kept
	rep.Rewritten = append(rep.Rewritten, path)
	if path != sc.seg.path {
		return moveAside(fs, sc.seg.path, rep)
	}
	return nil
}

// copyFile writes a copy of the segment from to the file to, which must
// not exist, through vfs.WriteFileAtomic: the copy is written and fsynced
// under from's temporary segment name, which Open removes after a crash,
// so to is either absent or whole, and its name is durable on return.
func copyFile(fs vfs.FS, from, to string) error {
	src, err := fs.OpenFile(from, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	return vfs.WriteFileAtomic(fs, to, from+tempSuffix, func(dst vfs.File) error {
		_, err := io.Copy(dst, src)
		return err
	})
}
