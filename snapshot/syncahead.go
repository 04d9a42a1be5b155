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
// disk. On a vfs.RangeSyncer it starts write-back after every rangeEvery
// bytes: dirty data stays near one range (when the writer is paced below
// the disk's speed), so the WAL's fsyncs on the same disk do not queue
// behind the snapshot. Otherwise it starts an fsync in the background every
// syncEvery bytes. Write is called from one goroutine at a time.
type syncAhead struct {
	f       vfs.File
	ctx     context.Context
	pace    func(ctx context.Context, n int) error // optional
	every   int64                                  // syncEvery, smaller in tests
	pending int64                                  // bytes written since the last background fsync started
	off     int64                                  // bytes written in all
	wg      sync.WaitGroup
	mu      sync.Mutex
	busy    bool
	err     error // first background fsync error
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
	if rs, ok := s.f.(vfs.RangeSyncer); ok {
		if s.pending >= min(s.every, rangeEvery) {
			s.pending = 0
			err = rs.SyncRange(s.off)
		}
		return n, err
	}
	if s.pending >= s.every {
		s.mu.Lock()
		start := !s.busy
		s.busy = true
		s.mu.Unlock()
		if start {
			s.pending = 0
			s.wg.Add(1)
			go s.sync()
		}
	}
	return n, err
}

func (s *syncAhead) sync() {
	defer s.wg.Done()
	err := s.f.Sync()
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

// wait waits for a background fsync in progress and returns the first
// background fsync error. The caller still fsyncs the whole file.
func (s *syncAhead) wait() error {
	s.wg.Wait()
	return s.failed()
}
