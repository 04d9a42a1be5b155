package wal

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// craftSegment writes a segment named first holding records with the
// given LSNs.
func craftSegment(t *testing.T, dir string, first uint64, lsns ...uint64) {
	t.Helper()
	b := segmentHeader[:]
	for _, lsn := range lsns {
		b = AppendRecord(b, lsn, 1, []byte("crafted"))
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(first)), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A log that has used MaxLSN opens and reads, but Append appends nothing
// and fails with ErrLSNExhausted: no record ever gets an LSN that wrapped
// around to 0, 1, 2.
func TestAppendAtLSNLimit(t *testing.T) {
	dir := t.TempDir()
	craftSegment(t, dir, MaxLSN-1, MaxLSN-1)
	l := mustOpen(t, Options{Dir: dir})
	lsn, err := l.Append(1, []byte("the last"))
	if err != nil || lsn != MaxLSN {
		t.Fatalf("Append of the last LSN: %d, %v", lsn, err)
	}
	if err := l.WaitDurable(lsn); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if lsn, err := l.Append(1, []byte("one too many")); !errors.Is(err, ErrLSNExhausted) {
			t.Fatalf("Append past MaxLSN: LSN %d, %v; want ErrLSNExhausted", lsn, err)
		}
	}
	if err := l.Err(); err != nil {
		t.Errorf("a refused Append failed the log: %v", err)
	}
	if got := l.LastLSN(); got != MaxLSN {
		t.Errorf("LastLSN %d, want %d", got, uint64(MaxLSN))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, Options{Dir: dir})
	defer l.Close()
	got := replayAll(t, l, 1)
	if len(got) != 2 || got[0].lsn != MaxLSN-1 || got[1].lsn != MaxLSN {
		t.Fatalf("replayed %+v", got)
	}
	if _, err := l.Append(1, nil); !errors.Is(err, ErrLSNExhausted) {
		t.Fatalf("Append after reopening: %v", err)
	}
}

// A crafted log whose names or records go past MaxLSN, up to 2^64-1, is
// refused by Open, Verify and Repair with ErrLSNExhausted and left as it
// is.
func TestLogBeyondLSNLimit(t *testing.T) {
	tests := []struct {
		name  string
		first uint64
		lsns  []uint64
	}{
		{"record 2^64-1", math.MaxUint64, []uint64{math.MaxUint64}},
		{"record past MaxLSN", MaxLSN, []uint64{MaxLSN, MaxLSN + 1}},
		{"empty segment past MaxLSN", MaxLSN + 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			craftSegment(t, dir, tc.first, tc.lsns...)
			before := segmentFiles(t, dir)
			if l, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLSNExhausted) {
				if err == nil {
					lsn, aerr := l.Append(1, nil)
					l.Close()
					t.Fatalf("Open accepted the log; Append got LSN %d, %v", lsn, aerr)
				}
				t.Fatalf("Open: %v, want ErrLSNExhausted", err)
			}
			if _, err := Open(Options{Dir: dir, Repair: true}); !errors.Is(err, ErrLSNExhausted) {
				t.Fatalf("Open with Repair: %v, want ErrLSNExhausted", err)
			}
			if _, err := Verify(nil, dir, nil); !errors.Is(err, ErrLSNExhausted) {
				t.Fatalf("Verify: %v, want ErrLSNExhausted", err)
			}
			if _, err := Repair(nil, dir, RepairOptions{}); !errors.Is(err, ErrLSNExhausted) {
				t.Fatalf("Repair: %v, want ErrLSNExhausted", err)
			}
			if after := segmentFiles(t, dir); len(after) != len(before) {
				t.Fatalf("segments %v became %v", before, after)
			}
		})
	}
}

// A bare stream whose record carries LSN 2^64-1 accepts no record after
// it: the next LSN would wrap around.
func TestReaderLSNWrap(t *testing.T) {
	b := AppendRecord(nil, math.MaxUint64, 1, nil)
	b = AppendRecord(b, 0, 1, nil)
	r := NewReader(bytes.NewReader(b))
	if rec, err := r.Next(); err != nil || rec.LSN != math.MaxUint64 {
		t.Fatalf("first record: %+v, %v", rec, err)
	}
	if rec, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("record after LSN 2^64-1: %+v, %v; want ErrCorrupt", rec, err)
	}
}
