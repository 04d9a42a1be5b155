package wal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestScrub(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, SegmentSize: MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	payload := make([]byte, 800)
	for i := 0; i < 40; i++ {
		typ := uint8(1 + i%3)
		lsn, err := l.Append(typ, payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.WaitDurable(lsn); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := l.Scrub(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Segments < 2 || rep.Records == 0 || rep.Records >= 40 || len(rep.ByType) != 3 {
		t.Fatalf("report %+v", rep)
	}
	var sum int64
	for _, st := range rep.ByType {
		sum += st.Records
		if st.Bytes != st.Records*int64(len(payload)) {
			t.Fatalf("type stats %+v", st)
		}
	}
	if sum != rep.Records {
		t.Fatalf("per-type records %d, total %d", sum, rep.Records)
	}

	// A flipped bit in a closed segment is found, with file and offset.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[SegmentHeaderSize+HeaderSize+5] ^= 1
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = l.Scrub(context.Background())
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != segs[0] || ce.Offset != SegmentHeaderSize {
		t.Fatalf("Scrub after bit flip = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Scrub(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Scrub = %v", err)
	}
}

// Sync makes everything appended durable even under SyncNever.
func TestSyncForcesFsync(t *testing.T) {
	l, err := Open(Options{Dir: t.TempDir(), Sync: SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := 0; i < 10; i++ {
		if last, err = l.Append(1, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if l.DurableLSN() < last {
		t.Fatalf("DurableLSN %d after Sync, want >= %d", l.DurableLSN(), last)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close = %v", err)
	}
}

func TestVerifyReadOnly(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, SegmentSize: MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := l.Append(1, make([]byte, 700)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	last := segs[len(segs)-1]
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 2, 3}) // a torn tail
	f.Close()
	rep, err := Verify(nil, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 20 || len(rep.Segments) != len(segs) || rep.Segments[len(segs)-1].TornBytes != 3 {
		t.Fatalf("report %+v", rep)
	}
	if fi, _ := os.Stat(last); fi.Size() != rep.Segments[len(segs)-1].Size {
		t.Fatal("Verify changed the file")
	}
	data, _ := os.ReadFile(segs[0])
	data[SegmentHeaderSize+1] ^= 1
	os.WriteFile(segs[0], data, 0o600)
	if _, err := Verify(nil, dir, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify of a damaged log = %v", err)
	}
}

func TestScrubStep(t *testing.T) {
	l, err := Open(Options{Dir: t.TempDir(), SegmentSize: MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 30; i++ {
		if _, err := l.Append(2, make([]byte, 1600)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	all, err := l.Scrub(context.Background())
	if err != nil || !all.Done {
		t.Fatal(all, err)
	}
	var segs int
	var recs int64
	after := uint64(0)
	for steps := 0; ; steps++ {
		rep, err := l.ScrubStep(context.Background(), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Segments > 2 {
			t.Fatalf("step verified %d segments", rep.Segments)
		}
		segs += rep.Segments
		recs += rep.Records
		after = rep.Last
		if rep.Done {
			break
		}
	}
	if segs != all.Segments || recs != all.Records {
		t.Fatalf("steps covered %d segments/%d records, full scrub %d/%d", segs, recs, all.Segments, all.Records)
	}
}

// A segment that disappears after Scrub listed it (TruncateBefore runs
// concurrently, without waiting for the scrub) is skipped, not damage.
func TestScrubSkipsRemovedSegment(t *testing.T) {
	bigRecords(t)
	l := mustOpen(t, Options{Dir: t.TempDir(), SegmentSize: MinSegmentSize})
	defer l.Close()
	writeRecords(t, l, 1, 40)
	l.mu.Lock()
	first := l.st.segs[0].path // closed: there are several segments
	n := len(l.st.segs)
	l.mu.Unlock()
	if n < 3 {
		t.Fatalf("only %d segments", n)
	}
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Scrub(context.Background())
	if err != nil || rep.Segments != n-2 || !rep.Done {
		t.Fatalf("Scrub after a removal: %+v, %v", rep, err)
	}
}
