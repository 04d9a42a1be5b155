package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cidstore/cidstore/internal/fuzztest"
)

// walAllocSlack is the allocation a Reader may make beyond a multiple of
// its input: the 64 KiB bufio buffer and one payload growth step of at
// most 1 MiB (doubled by append's growth), with room to spare.
const walAllocSlack = 4 << 20

// decoded is the outcome of decoding a stream: the records it accepted and
// how it ended.
type decoded struct {
	recs []testRec
	err  error // io.EOF, ErrTorn or a *CorruptError
	off  int64 // Reader.Offset at the end
}

// decodeStream decodes data with r, checking on the way that every record
// re-encodes to exactly the bytes it came from and that the stream ends in
// one of the three documented ways at the offset just past the last record.
func decodeStream(t *testing.T, r *Reader, data []byte) decoded {
	t.Helper()
	var d decoded
	var off int64
	for {
		rec, err := r.Next()
		if err != nil {
			if err != io.EOF && err != ErrTorn && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error %v", err)
			}
			if r.Offset() != off {
				t.Fatalf("offset %d after %v, want %d", r.Offset(), err, off)
			}
			if err == io.EOF && !allZero(data[off:]) {
				t.Fatalf("io.EOF at offset %d of %d, before data", off, len(data))
			}
			if _, again := r.Next(); again != err {
				t.Fatalf("error not sticky: %v then %v", err, again)
			}
			d.err, d.off = err, off
			return d
		}
		if rec.Type == 0 || len(rec.Payload) > MaxPayload {
			t.Fatalf("accepted record with type %d and %d payload bytes", rec.Type, len(rec.Payload))
		}
		if n := len(d.recs); n > 0 && rec.LSN != d.recs[n-1].lsn+1 {
			t.Fatalf("LSN %d after %d", rec.LSN, d.recs[n-1].lsn)
		}
		enc := AppendRecord(nil, rec.LSN, rec.Type, rec.Payload)
		if int64(len(enc)) > int64(len(data))-off || !bytes.Equal(enc, data[off:off+int64(len(enc))]) {
			t.Fatalf("record %d at offset %d does not re-encode to its input", rec.LSN, off)
		}
		d.recs = append(d.recs, testRec{rec.LSN, rec.Type, bytes.Clone(rec.Payload)})
		off += int64(len(enc))
	}
}

// FuzzWALDecode feeds arbitrary bytes to the WAL decoders, as a bare record
// stream and as a whole segment file.
//
// As a stream (the bytes after a valid segment header, or all of them):
// NewReader never panics, allocates at most a bounded multiple of the input
// plus a constant, returns only records that re-encode with AppendRecord to
// exactly the bytes they came from with consecutive LSNs, and ends in
// io.EOF, ErrTorn or an error matching ErrCorrupt.
//
// As the only segment of a log directory: Verify and Open agree with the
// reader. A clean or torn segment opens, the torn tail is cut (TornBytes)
// and Replay returns exactly the records the reader accepted; a corrupt one
// (or a bad header that is not a torn prefix) fails Open with ErrCorrupt,
// while Open with Repair keeps those records, and after them only intact
// frames of the input that carry the LSNs that follow (repair strings
// runs together by LSN across damage).
func FuzzWALDecode(f *testing.F) {
	for _, seed := range walSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Stream: decode in memory and bound the allocation.
		body := data
		if len(data) >= SegmentHeaderSize && bytes.Equal(data[:SegmentHeaderSize], segmentHeader[:]) {
			body = data[SegmentHeaderSize:]
		}
		var d decoded
		n := fuzztest.Allocated(func() { d = decodeStream(t, NewReader(bytes.NewReader(body)), body) })
		if limit := walAllocSlack + 4*uint64(len(body)); n > limit {
			t.Fatalf("decoding %d bytes allocated %d bytes (limit %d)", len(body), n, limit)
		}

		// Segment: what recovery must make of data as segment 1.
		want := expectSegment(t, data)
		if len(body) < len(data) && len(d.recs) > 0 && d.recs[0].lsn == 1 {
			// Once a first record with LSN 1 is accepted, a Reader that
			// expects LSN 1 decodes exactly the same stream.
			if len(want.recs) != len(d.recs) || (d.err == io.EOF) != (want.torn == 0 && !want.corrupt) ||
				(d.err == ErrTorn) != (want.torn > 0) {
				t.Fatalf("NewReader: %d records, %v; segment reader: %d records, torn %d, corrupt %v",
					len(d.recs), d.err, len(want.recs), want.torn, want.corrupt)
			}
		}
		dir := t.TempDir()
		path := filepath.Join(dir, segmentName(1))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(nil, dir, nil); (err != nil) != want.corrupt || (err != nil && !errors.Is(err, ErrCorrupt)) {
			t.Fatalf("Verify: %v, want corrupt %v", err, want.corrupt)
		}
		l, err := Open(Options{Dir: dir, Sync: SyncNever})
		if want.corrupt {
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a corrupt segment")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			l, err = Open(Options{Dir: dir, Sync: SyncNever, Repair: true})
			if err != nil {
				t.Fatalf("Open with Repair: %v", err)
			}
			if !l.RepairReport().Truncated {
				t.Error("repair of a corrupt segment reports no cut")
			}
		} else if err != nil {
			t.Fatalf("Open: %v", err)
		} else if got := l.RepairReport().TornBytes; got != want.torn {
			t.Errorf("TornBytes %d, want %d", got, want.torn)
		}
		got := replayAll(t, l, 1)
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if want.corrupt && len(got) > len(want.recs) {
			// Repair strings intact runs together by LSN: records that
			// continue the kept ones past the damage stay too. They must
			// be frames of data, with the LSNs that follow.
			body := data[SegmentHeaderSize:]
			for i, r := range got[len(want.recs):] {
				if r.lsn != uint64(len(want.recs)+i+1) || !bytes.Contains(body, AppendRecord(nil, r.lsn, r.typ, r.payload)) {
					t.Fatalf("repair kept record %d (LSN %d), which no intact frame after the damage holds",
						len(want.recs)+i, r.lsn)
				}
			}
			got = got[:len(want.recs)]
		}
		if len(got) != len(want.recs) {
			t.Fatalf("replayed %d records, want %d", len(got), len(want.recs))
		}
		for i, r := range want.recs {
			if got[i].lsn != r.lsn || got[i].typ != r.typ || !bytes.Equal(got[i].payload, r.payload) {
				t.Fatalf("record %d: replayed %d/%d/%q, want %d/%d/%q", i, got[i].lsn, got[i].typ,
					got[i].payload, r.lsn, r.typ, r.payload)
			}
		}
	})
}

// segmentOutcome is what recovery must make of one segment file.
type segmentOutcome struct {
	recs    []testRec // records kept (with Repair, when corrupt)
	torn    int64     // bytes cut as a torn tail
	corrupt bool      // Open without Repair must fail with ErrCorrupt
}

// expectSegment works out, from the header rules and a Reader expecting
// LSN 1 first, what recovery must make of data as the only segment.
func expectSegment(t *testing.T, data []byte) segmentOutcome {
	if len(data) < SegmentHeaderSize || !bytes.Equal(data[:SegmentHeaderSize], segmentHeader[:]) {
		n := min(len(data), SegmentHeaderSize)
		if (len(data) <= SegmentHeaderSize && bytes.Equal(data, segmentHeader[:n])) || allZero(data) {
			return segmentOutcome{torn: int64(len(data))}
		}
		return segmentOutcome{corrupt: true}
	}
	body := data[SegmentHeaderSize:]
	d := decodeStream(t, newReader(bytes.NewReader(body), "", SegmentHeaderSize, 1), body)
	out := segmentOutcome{recs: d.recs}
	switch {
	case d.err == ErrTorn:
		out.torn = int64(len(body)) - d.off
	case d.err != io.EOF:
		out.corrupt = true
	}
	return out
}

// walSeeds returns hand-made seeds for FuzzWALDecode: segments of several
// records, cut, damaged and out of sequence.
func walSeeds() [][]byte {
	seg := func(frames ...[]byte) []byte {
		return bytes.Join(append([][]byte{segmentHeader[:]}, frames...), nil)
	}
	var recs [][]byte
	for i := 1; i <= 5; i++ {
		recs = append(recs, AppendRecord(nil, uint64(i), typeFor(i), payloadFor(i)))
	}
	flipped := bytes.Clone(recs[2])
	flipped[HeaderSize] ^= 1
	full := seg(recs...)
	return [][]byte{
		nil,
		segmentHeader[:5],
		segmentHeader[:],
		make([]byte, 24),
		full,
		full[:len(full)-3],
		seg(recs[0], recs[1], flipped),
		seg(recs[0], recs[1], flipped, recs[3]),
		seg(recs[0], recs[2]),
		seg(recs[1], recs[2]),
		seg(recs[0], recs[1], make([]byte, 30)),
		bytes.Join(recs, nil),
	}
}

// TestGenerateWALCorpus rewrites testdata/fuzz/FuzzWALDecode from segments
// written by a real Log (run with -gencorpus). The files are checked in, so
// every plain go test runs them.
func TestGenerateWALCorpus(t *testing.T) {
	if !*fuzztest.Regenerate {
		t.Skip("run with -gencorpus to rewrite the seed corpus")
	}
	dir := t.TempDir()
	bigRecords(t) // a few records per segment
	l := mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
	writeRecords(t, l, 1, 12)
	if _, err := l.Append(3, bytes.Repeat([]byte{0xab}, 5000)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for i, path := range segmentFiles(t, dir) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fuzztest.WriteSeed(t, "FuzzWALDecode", fmt.Sprintf("segment-%d", i+1), data)
	}
}
