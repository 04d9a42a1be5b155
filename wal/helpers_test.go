package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testRec is a record as seen by a test.
type testRec struct {
	lsn     uint64
	typ     uint8
	payload []byte
}

// payloadFor returns a deterministic payload of varying size for record i:
// 0..40 bytes, times payloadScale.
func payloadFor(i int) []byte {
	n := (i * 7) % 41 * payloadScale
	return bytes.Repeat([]byte{byte('a' + i%26)}, n)
}

// payloadScale multiplies the payload sizes of payloadFor. Tests of
// rotation set it with bigRecords.
var payloadScale = 1

// bigRecords makes payloadFor's records 50 times larger for the rest of
// the test (up to 2017 bytes framed), so that segments of MinSegmentSize
// hold one to four records and rotation happens every few records.
func bigRecords(t testing.TB) {
	payloadScale = 50
	t.Cleanup(func() { payloadScale = 1 })
}

func typeFor(i int) uint8 { return uint8(1 + i%3) }

func mustOpen(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// writeRecords appends records 1..n (payloadFor) and waits for each batch.
func writeRecords(t testing.TB, l *Log, from, n int) {
	t.Helper()
	var last uint64
	for i := from; i < from+n; i++ {
		lsn, err := l.Append(typeFor(i), payloadFor(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if lsn != uint64(i) {
			t.Fatalf("Append %d got LSN %d", i, lsn)
		}
		last = lsn
	}
	if err := l.WaitDurable(last); err != nil {
		t.Fatalf("WaitDurable: %v", err)
	}
}

func replayAll(t testing.TB, l *Log, from uint64) []testRec {
	t.Helper()
	var out []testRec
	err := l.Replay(from, func(lsn uint64, typ uint8, p []byte) error {
		out = append(out, testRec{lsn, typ, bytes.Clone(p)})
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

// checkRecords verifies that got holds exactly records from..to written by
// writeRecords.
func checkRecords(t testing.TB, got []testRec, from, to int) {
	t.Helper()
	if len(got) != to-from+1 && !(to < from && len(got) == 0) {
		t.Fatalf("got %d records, want %d (LSN %d..%d)", len(got), to-from+1, from, to)
	}
	for k, r := range got {
		i := from + k
		if r.lsn != uint64(i) || r.typ != typeFor(i) || !bytes.Equal(r.payload, payloadFor(i)) {
			t.Fatalf("record %d: got lsn=%d typ=%d len=%d", i, r.lsn, r.typ, len(r.payload))
		}
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range segmentFiles(t, src) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// frameEnds returns the end offsets of the records in a segment file.
func frameEnds(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(b[SegmentHeaderSize:]))
	var ends []int64
	for {
		if _, err := r.Next(); err != nil {
			break
		}
		ends = append(ends, SegmentHeaderSize+r.Offset())
	}
	return ends
}

// makeLog writes records 1..k to a new log in dir and closes it.
func makeLog(t *testing.T, dir string, k int, segSize int64) {
	t.Helper()
	l := mustOpen(t, Options{Dir: dir, SegmentSize: segSize})
	writeRecords(t, l, 1, k)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
