package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cidstore/cidstore/vfs"
)

func TestOpenAppendReplayReopen(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wal")
			l := mustOpen(t, Options{Dir: dir, Sync: mode, SyncInterval: time.Millisecond})
			if got := l.LastLSN(); got != 0 {
				t.Fatalf("LastLSN of empty log = %d", got)
			}
			writeRecords(t, l, 1, 50)
			checkRecords(t, replayAll(t, l, 0), 1, 50)
			checkRecords(t, replayAll(t, l, 20), 20, 50)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("dir mode %o", fi.Mode().Perm())
			}
			for _, p := range segmentFiles(t, dir) {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("segment mode %o", fi.Mode().Perm())
				}
			}

			l = mustOpen(t, Options{Dir: dir, Sync: mode})
			if l.LastLSN() != 50 || l.DurableLSN() != 50 {
				t.Fatalf("after reopen LastLSN=%d DurableLSN=%d", l.LastLSN(), l.DurableLSN())
			}
			writeRecords(t, l, 51, 10)
			checkRecords(t, replayAll(t, l, 1), 1, 60)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// SegmentSize must lie within MinSegmentSize..MaxSegmentSize (0 means the
// default); anything else, like other unusable options, fails Open with
// ErrInvalidOptions before the directory is touched.
func TestOpenRejectsInvalidOptions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	for _, o := range []Options{
		{},
		{Dir: dir, SegmentSize: -1},
		{Dir: dir, SegmentSize: 1},
		{Dir: dir, SegmentSize: MinSegmentSize - 1},
		{Dir: dir, SegmentSize: MaxSegmentSize + 1},
		{Dir: dir, SegmentSize: 1 << 40},
		{Dir: dir, Sync: SyncNever + 1},
		{Dir: dir, Sync: -1},
	} {
		if l, err := Open(o); !errors.Is(err, ErrInvalidOptions) {
			if err == nil {
				l.Close()
			}
			t.Errorf("Open(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("rejected options created the directory: %v", err)
	}
	for _, size := range []int64{0, MinSegmentSize, MaxSegmentSize} {
		l := mustOpen(t, Options{Dir: filepath.Join(dir, fmt.Sprint(size)), SegmentSize: size})
		writeRecords(t, l, 1, 3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSegmentRotation(t *testing.T) {
	dir := t.TempDir()
	// Small segments and big records: most segments hold a few records,
	// so records cross segment boundaries inside single flush batches.
	bigRecords(t)
	l := mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var mu sync.Mutex // serialise Append so LSN i gets payloadFor(i)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				next := l.LastLSN() + 1
				if next > n {
					mu.Unlock()
					return
				}
				lsn, err := l.Append(typeFor(int(next)), payloadFor(int(next)))
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
				if err := l.WaitDurable(lsn); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Segments < 20 {
		t.Fatalf("only %d segments", st.Segments)
	}
	checkRecords(t, replayAll(t, l, 1), 1, n)
	checkRecords(t, replayAll(t, l, 137), 137, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Every segment respects the size limit unless it holds one record,
	// and starts with the LSN in its name.
	for _, p := range segmentFiles(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := parseSegmentName(filepath.Base(p))
		r := NewReader(bytes.NewReader(b[SegmentHeaderSize:]))
		cnt := 0
		for {
			rec, err := r.Next()
			if err != nil {
				break
			}
			if cnt == 0 && rec.LSN != first {
				t.Fatalf("%s starts with LSN %d", p, rec.LSN)
			}
			cnt++
		}
		if len(b) > MinSegmentSize && cnt > 1 {
			t.Fatalf("%s is %d bytes with %d records", p, len(b), cnt)
		}
	}
	l = mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
	writeRecords(t, l, n+1, 5)
	checkRecords(t, replayAll(t, l, 1), 1, n+5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLargeBatchSpansBuffers(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, SegmentSize: 1 << 20, Sync: SyncNever})
	// More than initialBuffer bytes in one go, records larger than a
	// bufio buffer, and a segment size a few records wide.
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160 KB
	var last uint64
	for i := 0; i < 20; i++ {
		lsn, err := l.Append(1, big[:len(big)-i])
		if err != nil {
			t.Fatal(err)
		}
		last = lsn
	}
	if err := l.WaitDurable(last); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, Options{Dir: dir, SegmentSize: 1 << 20})
	defer l.Close()
	i := 0
	err := l.Replay(1, func(lsn uint64, typ uint8, p []byte) error {
		if !bytes.Equal(p, big[:len(big)-i]) {
			t.Fatalf("record %d differs", lsn)
		}
		i++
		return nil
	})
	if err != nil || i != 20 {
		t.Fatalf("replayed %d: %v", i, err)
	}
	if s := l.Stats().Segments; s < 3 {
		t.Fatalf("segments %d", s)
	}
}

func TestTruncateBefore(t *testing.T) {
	dir := t.TempDir()
	bigRecords(t)
	l := mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize})
	defer l.Close()
	writeRecords(t, l, 1, 100)
	for _, cut := range []uint64{0, 1, 10, 37, 38, 60, 99, 100, 101, 1000} {
		if err := l.TruncateBefore(cut); err != nil {
			t.Fatal(err)
		}
		first := l.FirstLSN()
		if first > cut && first > 1 {
			t.Fatalf("TruncateBefore(%d) removed records: FirstLSN %d", cut, first)
		}
		got := replayAll(t, l, 0)
		checkRecords(t, got, int(first), 100)
		if n := len(segmentFiles(t, dir)); n != l.Stats().Segments {
			t.Fatalf("%d files, Stats says %d", n, l.Stats().Segments)
		}
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments left, want only the active one", n)
	}
	writeRecords(t, l, 101, 3)
	checkRecords(t, replayAll(t, l, 100), 100, 103)
}

func TestConcurrentAppendWait(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, SegmentSize: 4096})
	const writers, each = 32, 50
	var wg sync.WaitGroup
	got := make([][]uint64, writers)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := []byte{byte(w), byte(i)}
				lsn, err := l.Append(1, p)
				if err != nil {
					errs <- err
					return
				}
				if err := l.WaitDurable(lsn); err != nil {
					errs <- err
					return
				}
				if l.DurableLSN() < lsn {
					errs <- errors.New("DurableLSN behind an acknowledged record")
					return
				}
				got[w] = append(got[w], lsn)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Appends != writers*each || st.DurableLSN != writers*each {
		t.Fatalf("stats %+v", st)
	}
	var hist uint64
	for _, c := range st.RecordsPerFsync {
		hist += c
	}
	if hist == 0 || hist > st.Fsyncs {
		t.Fatalf("histogram total %d, fsyncs %d", hist, st.Fsyncs)
	}
	seen := make(map[[2]byte]uint64)
	err := l.Replay(1, func(lsn uint64, typ uint8, p []byte) error {
		seen[[2]byte(p)] = lsn
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		for i, lsn := range got[w] {
			if seen[[2]byte{byte(w), byte(i)}] != lsn {
				t.Fatalf("writer %d record %d: LSN %d not replayed", w, i, lsn)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFlushesAndIsIdempotent(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, Options{Dir: dir, Sync: mode, SyncInterval: time.Hour})
			for i := 1; i <= 100; i++ {
				if _, err := l.Append(typeFor(i), payloadFor(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if l.DurableLSN() != 100 {
				t.Fatalf("DurableLSN after Close = %d", l.DurableLSN())
			}
			if err := l.Close(); !errors.Is(err, ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := l.Append(1, nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Append after Close: %v", err)
			}
			if err := l.WaitDurable(100); err != nil {
				t.Fatalf("WaitDurable of a durable record after Close: %v", err)
			}
			if err := l.Replay(1, nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Replay after Close: %v", err)
			}
			l = mustOpen(t, Options{Dir: dir})
			checkRecords(t, replayAll(t, l, 1), 1, 100)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIntervalSyncTicker(t *testing.T) {
	dir := t.TempDir()
	ffs := vfs.NewFaultFS(vfs.Default)
	l := mustOpen(t, Options{FS: ffs, Dir: dir, Sync: SyncNever})
	defer l.Close()
	writeRecords(t, l, 1, 10)
	if l.DurableLSN() != 0 {
		t.Fatalf("SyncNever fsynced: DurableLSN %d", l.DurableLSN())
	}
	if l.WrittenLSN() != 10 {
		t.Fatalf("WrittenLSN %d", l.WrittenLSN())
	}
	synced := make(chan struct{}, 1)
	l.mu.Lock()
	l.fl.syncHook = func() {
		select {
		case synced <- struct{}{}:
		default:
		}
	}
	l.mu.Unlock()
	l.SetSync(SyncInterval, time.Millisecond)
	// The ticker fsyncs without further appends.
	for l.DurableLSN() < 10 {
		select {
		case <-synced:
		case <-time.After(10 * time.Second):
			t.Fatal("interval fsync never happened")
		}
	}
	l.SetSync(SyncAlways, 0)
	writeRecords(t, l, 11, 5)
	if l.DurableLSN() < 15 {
		t.Fatalf("SyncAlways acked before fsync: DurableLSN %d", l.DurableLSN())
	}
}

func TestLockExcludesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir})
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	if _, err := Repair(nil, dir, RepairOptions{}); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("Repair of open log: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, Options{Dir: dir})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAppendValidation(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir()})
	defer l.Close()
	if _, err := l.Append(0, nil); err == nil {
		t.Fatal("type 0 accepted")
	}
	if _, err := l.Append(1, make([]byte, MaxPayload+1)); err == nil {
		t.Fatal("oversized payload accepted")
	}
	if err := l.WaitDurable(5); err == nil {
		t.Fatal("WaitDurable of an unassigned LSN succeeded")
	}
	if l.LastLSN() != 0 {
		t.Fatal("failed appends consumed LSNs")
	}
}

func TestAppendAllocs(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir(), Sync: SyncNever})
	defer l.Close()
	p := make([]byte, 80)
	// Warm up both flush buffers.
	writeRecords(t, l, 1, 1000)
	n := testing.AllocsPerRun(1000, func() {
		if _, err := l.Append(1, p); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("Append allocates %v times per call", n)
	}
}

func TestReplayWhileAppending(t *testing.T) {
	dir := t.TempDir()
	bigRecords(t)
	l := mustOpen(t, Options{Dir: dir, SegmentSize: MinSegmentSize, Sync: SyncNever})
	defer l.Close()
	writeRecords(t, l, 1, 10)
	done := make(chan error, 1)
	go func() {
		for i := 11; i <= 400; i++ {
			if _, err := l.Append(typeFor(i), payloadFor(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 20 {
		got := replayAll(t, l, 1)
		if len(got) < 10 {
			t.Fatalf("replayed only %d records", len(got))
		}
		checkRecords(t, got, 1, len(got))
		if err := l.TruncateBefore(0); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(400); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, replayAll(t, l, 1), 1, 400)
}

// InFlight is closed when no batch is being written.
func TestInFlightIdle(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir()})
	defer l.Close()
	writeRecords(t, l, 1, 3)
	select {
	case <-l.InFlight():
	default:
		t.Fatal("InFlight open on an idle log")
	}
}
