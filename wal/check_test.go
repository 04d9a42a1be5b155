package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// A record that passes its checksum but that Options.CheckRecord rejects
// is damage at its offset for Open, Verify, Open with Repair and Scrub
// alike, even at the very end of the log (a torn write never passes its
// checksum).
func TestCheckRecord(t *testing.T) {
	var rejectType atomic.Int32 // record type to reject, 0: none
	check := func(r Record) error {
		if int32(r.Type) == rejectType.Load() {
			return fmt.Errorf("unknown record type %d", r.Type)
		}
		return nil
	}
	for _, last := range []bool{false, true} {
		t.Run(fmt.Sprintf("last=%v", last), func(t *testing.T) {
			bigRecords(t)
			dir := t.TempDir()
			l := mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
			writeRecords(t, l, 1, 12)
			lsn, err := l.Append(9, payloadFor(13))
			if err != nil || l.WaitDurable(lsn) != nil {
				t.Fatal(err)
			}
			if !last {
				writeRecords(t, l, 14, 5)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rejectType.Store(9)
			var seg string
			var off int64
			for _, p := range segmentFiles(t, dir) {
				first, _ := parseSegmentName(filepath.Base(p))
				ends := frameEnds(t, p)
				if first <= 13 && 13 < first+uint64(len(ends)) {
					seg, off = p, int64(SegmentHeaderSize)
					if i := 13 - first; i > 0 {
						off = ends[i-1]
					}
				}
			}
			isBad := func(what string, err error) {
				t.Helper()
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.File != seg || ce.Offset != off || ce.LSN != 13 {
					t.Fatalf("%s: %v, want damage at %s:%d", what, err, seg, off)
				}
			}
			_, err = Open(Options{Dir: dir, SegmentSize: MinSegmentSize, CheckRecord: check})
			isBad("Open", err)
			_, err = Verify(nil, dir, check)
			isBad("Verify", err)
			if _, err := Verify(nil, dir, nil); err != nil {
				t.Fatalf("Verify without the check: %v", err)
			}

			// Scrub: a log that opened while the check accepted the record.
			if !last {
				rejectType.Store(0)
				l = mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize, CheckRecord: check})
				rejectType.Store(9)
				_, err = l.Scrub(context.Background())
				isBad("Scrub", err)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}

			l = mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize, CheckRecord: check, Repair: true})
			checkRecords(t, replayAll(t, l, 1), 1, 12)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A log opened read-only reads what Open would recover and changes
// nothing: a torn tail and a leftover temporary segment stay; appends and
// syncs fail with ErrReadOnly; a missing directory is not created.
func TestReadOnly(t *testing.T) {
	bigRecords(t)
	dir := t.TempDir()
	makeLog(t, dir, 12, MinSegmentSize)
	segs := segmentFiles(t, dir)
	last := segs[len(segs)-1]
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("torn")); err != nil || f.Close() != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, segmentName(99)+tempSuffix)
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(last)
	l := mustOpen(t, Options{Dir: dir, ReadOnly: true})
	checkRecords(t, replayAll(t, l, 1), 1, 12)
	if _, err := l.Append(1, nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Sync: %v", err)
	}
	if err := l.WaitDurable(13); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("WaitDurable: %v", err)
	}
	if got := l.RepairReport().TornBytes; got != 4 {
		t.Fatalf("TornBytes %d", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(last); fi2.Size() != fi.Size() {
		t.Fatal("read-only open truncated the torn tail")
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal("read-only open removed a temporary segment")
	}
	missing := filepath.Join(dir, "missing")
	if _, err := Open(Options{Dir: missing, ReadOnly: true}); err == nil {
		t.Fatal("read-only Open of a missing directory succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal("read-only Open created the directory")
	}
	empty := t.TempDir()
	l = mustOpen(t, Options{Dir: empty, ReadOnly: true})
	if l.FirstLSN() != 1 || l.LastLSN() != 0 || len(replayAll(t, l, 1)) != 0 {
		t.Fatal("empty read-only log")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
