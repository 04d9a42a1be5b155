package snapshot

import (
	"context"
	"sync"

	"github.com/cidstore/cidstore/vfs"
)

// syncEvery is how many bytes WriteFile writes between background fsyncs,
// on a file that cannot sync a range.
const syncEvery = 16 << 20

// rangeEvery is how many bytes WriteFile writes between range syncs, on a
// file that can (vfs.RangeSyncer): little enough that an fsync of another
// file never waits long behind the snapshot's write-back.
const rangeEvery = 1 << 20

// syncAhead writes to a file and keeps its write-back going while encoding
// goes on, so the final fsync has only the tail left; without it a large
// snapshot is encoded first and then waits for the whole file to reach the
// disk. Every `every` bytes it starts, in the background, either write-back
// of everything written so far (a vfs.RangeSyncer, every rangeEvery bytes:
// dirty data stays near one range when the writer is paced below the
// disk's speed, so the WAL's syncs on the same disk do not queue behind
// the snapshot) or an fsync (any other file, every syncEvery bytes). It is
// in the background because Write runs under the snapshot sink's lock:
// even a write-back start can block while the disk's queue is full, and
// the other encoders would wait. Write is called from one goroutine at a
// time.
type syncAhead struct {
	f       vfs.File
	ctx     context.Context
	pace    func(ctx context.Context, n int) error // optional
	every   int64                                  // bytes between background syncs
	pending int64                                  // bytes written since the last background sync started
	off     int64                                  // bytes written in all
	wg      sync.WaitGroup
	mu      sync.Mutex
	busy    bool
	err     error // first background sync error
}

// newSyncAhead returns a syncAhead for f: every rangeEvery bytes on a
// vfs.RangeSyncer, else every syncEvery bytes.
func newSyncAhead(ctx context.Context, f vfs.File, pace func(context.Context, int) error) *syncAhead {
	every := int64(syncEvery)
	if _, ok := f.(vfs.RangeSyncer); ok {
		every = rangeEvery
	}
	return &syncAhead{f: f, ctx: ctx, pace: pace, every: every}
}

func (s *syncAhead) Write(p []byte) (int, error) {
	if err := s.failed(); err != nil {
		return 0, err
	}
	n, err := s.f.Write(p)
	s.pending += int64(n)
	s.off += int64(n)
	if err == nil && s.pace != nil {
		err = s.pace(s.ctx, n)
	}
	if err != nil {
		return n, err
	}
	if s.pending >= s.every {
		s.mu.Lock()
		start := !s.busy
		s.busy = true
		s.mu.Unlock()
		if start { // else the next Write starts one covering this too
			s.pending = 0
			s.wg.Add(1)
			go s.sync(s.off)
		}
	}
	return n, nil
}

// sync starts write-back of [0, off) on a vfs.RangeSyncer, or fsyncs.
func (s *syncAhead) sync(off int64) {
	defer s.wg.Done()
	var err error
	if rs, ok := s.f.(vfs.RangeSyncer); ok {
		err = rs.SyncRange(off)
	} else {
		err = s.f.Sync()
	}
	s.mu.Lock()
	s.busy = false
	if err != nil && s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *syncAhead) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// wait waits for a background sync in progress and returns the first
// background sync error. The caller still fsyncs the whole file.
func (s *syncAhead) wait() error {
	s.wg.Wait()
	return s.failed()
}
