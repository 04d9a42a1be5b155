package wal

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cidstore/cidstore/vfs"
)

func TestFaults(t *testing.T) {
	tests := []struct {
		name    string
		segSize int64
		arm     func(f *vfs.FaultFS)
		want    error
	}{
		// A log that preallocates retries a write that ran out of space
		// once, after giving up its spare: the second failure is sticky.
		{"write ENOSPC", 0, func(f *vfs.FaultFS) {
			f.FailWrite(f.Writes()+1, syscall.ENOSPC)
			f.FailWrite(f.Writes()+2, syscall.ENOSPC)
		}, syscall.ENOSPC},
		{"write EIO", 0, func(f *vfs.FaultFS) { f.FailWrite(f.Writes()+1, syscall.EIO) }, syscall.EIO},
		{"short write", 0, func(f *vfs.FaultFS) { f.ShortWrite(f.Writes() + 1) }, io.ErrShortWrite},
		{"fsync EIO", 0, func(f *vfs.FaultFS) { f.FailSync(f.Syncs()+1, syscall.EIO) }, syscall.EIO},
		// With the smallest segments and records over half their size,
		// every record after the first starts a new segment, so the next
		// write is the new segment's header and the next fsync is the new
		// segment's.
		{"rotation header ENOSPC", MinSegmentSize, func(f *vfs.FaultFS) { f.FailWrite(f.Writes()+1, syscall.ENOSPC) }, syscall.ENOSPC},
		{"rotation fsync EIO", MinSegmentSize, func(f *vfs.FaultFS) { f.FailSync(f.Syncs()+1, syscall.EIO) }, syscall.EIO},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload := make([]byte, 80)
			if tc.segSize != 0 {
				payload = make([]byte, tc.segSize/2+1)
			}
			dir := t.TempDir()
			ffs := vfs.NewFaultFS(vfs.Default)
			l := mustOpen(t, Options{FS: ffs, Dir: dir, SegmentSize: tc.segSize})
			const acked = 5
			for i := 1; i <= acked; i++ {
				payload[0] = byte(i)
				lsn, err := l.Append(1, payload)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.WaitDurable(lsn); err != nil {
					t.Fatal(err)
				}
			}
			tc.arm(ffs)
			payload[0] = acked + 1
			lsn, err := l.Append(1, payload)
			if err != nil {
				t.Fatal(err)
			}
			err = l.WaitDurable(lsn)
			if !errors.Is(err, tc.want) {
				t.Fatalf("WaitDurable: got %v, want %v", err, tc.want)
			}
			// The error names the segment, not the temporary name it
			// was created under, which no longer exists.
			if msg := err.Error(); strings.Contains(msg, tempSuffix) || !strings.Contains(msg, segmentSuffix) {
				t.Errorf("error names no segment or a temporary file: %v", err)
			}
			if d := l.DurableLSN(); d >= lsn {
				t.Fatalf("DurableLSN %d covers failed LSN %d", d, lsn)
			}
			if !errors.Is(l.Err(), tc.want) {
				t.Fatalf("Err: %v", l.Err())
			}
			// Sticky: everything later fails, even with the fault gone.
			if _, err := l.Append(1, payload); !errors.Is(err, tc.want) {
				t.Fatalf("Append after failure: %v", err)
			}
			if err := l.WaitDurable(lsn); !errors.Is(err, tc.want) {
				t.Fatalf("second WaitDurable: %v", err)
			}
			if err := l.WaitDurable(acked); err != nil {
				t.Fatalf("WaitDurable of a record acknowledged before the failure: %v", err)
			}
			if err := l.Close(); !errors.Is(err, tc.want) {
				t.Fatalf("Close: %v", err)
			}
			if d := l.DurableLSN(); d >= lsn {
				t.Fatalf("DurableLSN %d covers failed LSN %d after Close", d, lsn)
			}

			// Reopen with the real filesystem: acknowledged records
			// are intact. The failed record may or may not be there
			// (it may have reached the page cache), nothing else may.
			l = mustOpen(t, Options{Dir: dir, SegmentSize: tc.segSize})
			defer l.Close()
			var got []byte
			err = l.Replay(1, func(lsn uint64, typ uint8, p []byte) error {
				if len(p) != len(payload) || p[0] != byte(lsn) {
					t.Fatalf("record %d damaged", lsn)
				}
				got = append(got, p[0])
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) < acked || len(got) > acked+1 {
				t.Fatalf("replayed %d records, want %d or %d", len(got), acked, acked+1)
			}
			matches, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
			if len(matches) != 0 {
				t.Fatalf("temporary files left: %v", matches)
			}
		})
	}
}

func TestFaultWakesAllWaiters(t *testing.T) {
	dir := t.TempDir()
	ffs := vfs.NewFaultFS(vfs.Default)
	l := mustOpen(t, Options{FS: ffs, Dir: dir})
	writeRecords(t, l, 1, 3)
	ffs.FailSync(ffs.Syncs()+1, syscall.EIO)
	const n = 64
	var wg sync.WaitGroup
	results := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lsn, err := l.Append(1, []byte("x"))
			if err == nil {
				err = l.WaitDurable(lsn)
			}
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	for err := range results {
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("writer got %v, want EIO", err)
		}
	}
	if d := l.DurableLSN(); d != 3 {
		t.Fatalf("DurableLSN %d, want 3", d)
	}
	if err := l.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close: %v", err)
	}
}

func TestIntervalFsyncFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	ffs := vfs.NewFaultFS(vfs.Default)
	l := mustOpen(t, Options{FS: ffs, Dir: dir, Sync: SyncNever})
	writeRecords(t, l, 1, 3)
	ffs.FailSync(ffs.Syncs()+1, syscall.EIO)
	done := make(chan struct{})
	l.mu.Lock()
	var once sync.Once
	l.fl.syncHook = func() { once.Do(func() { close(done) }) }
	l.mu.Unlock()
	l.SetSync(SyncInterval, 1)
	<-done
	if !errors.Is(l.Err(), syscall.EIO) {
		t.Fatalf("Err: %v", l.Err())
	}
	if l.DurableLSN() != 0 {
		t.Fatalf("DurableLSN %d after failed fsync", l.DurableLSN())
	}
	if _, err := l.Append(1, nil); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append: %v", err)
	}
	if err := l.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: f}); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
}
