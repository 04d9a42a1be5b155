package store

import (
	"context"
	"errors"
	"os"
	"runtime"
	"time"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/snapshot"
)

// Background I/O yields to the WAL.
//
// Every acknowledged write waits for the write-ahead log: for its append
// and, under SyncAlways, for the group commit's fsync. The store's other
// work competes with the log for the same cores and the same disk: writing
// a snapshot (a checkpoint, Restore), encoding a stream (Export,
// View.Export), freeing a retired snapshot, and the maintenance passes.
// One rule covers all of it: background work gives way to the WAL, and
// only its working time counts against the workers' CPU share. This file
// applies the rule; the lower layers only offer the means (package
// snapshot its encoder options and write-back, package maintenance its
// Pacer).
//
//   - Cores: snapshot encoders run on one goroutine fewer than GOMAXPROCS.
//   - Turns: at every yield point (a snapshot encoder's, every 1024 keys,
//     between the 128 KiB pieces of a block and after each block; between
//     the steps of freeGradually) background work waits while a WAL batch
//     is being written or fsynced, at most walWaitMax, and then gives up
//     its processor. A goroutine in fsync keeps its P until the runtime's
//     monitor takes it back, so on a small machine an encoder running
//     meanwhile would hold the only other P and the writers due to append
//     next would queue.
//   - Bandwidth: while writes arrive (the WAL's written LSN moves) a
//     snapshot file is written no faster than Config.CheckpointPace; the
//     snapshot's write-back would otherwise fill the disk queue, and every
//     WAL fsync wait behind it. An idle store's snapshot goes at full
//     speed.
//   - Write-back: snapshot.WriteFile starts the write-back of what it wrote
//     every MiB (sync_file_range; a file that cannot is fsynced every 16
//     MiB) so that little dirty data waits for the disk at any time, and
//     a retired snapshot is freed removeChunk bytes at a time: freeing a
//     large file at once holds the filesystem's journal, which every WAL
//     fsync needs.
//   - CPU: the periodic maintenance workers together keep to
//     Config.WorkerDuty, pausing between bounded steps (maintenance.Pacer);
//     the time a checkpoint waits under the rules above is reported to its
//     Pacer as idle and not charged.

// walWaitMax bounds one wait of background work for the WAL flusher, so
// that a checkpoint under constant writes still progresses.
const walWaitMax = 2 * time.Millisecond

// removeChunk is how much of a large file freeGradually frees per step.
const removeChunk = 8 << 20

// snapshotOptions are the snapshot writer settings that apply the rule:
// every snapshot the store writes or exports uses them. The time the
// bandwidth limit waits is reported to mp (a worker's maintenance pacer;
// nil for a call from outside the workers) as idle.
func (s *Store) snapshotOptions(mp *maintenance.Pacer) []snapshot.Option {
	opts := []snapshot.Option{snapshot.WithParallelism(max(1, runtime.GOMAXPROCS(0)-1))}
	if s.wal == nil {
		return opts
	}
	bw := s.newPacer(s.cfg.Load().CheckpointPace)
	bw.idle = mp.Idle
	return append(opts,
		snapshot.WithYield(func() {
			s.yieldToWAL()
			runtime.Gosched()
		}),
		snapshot.WithPacer(bw.wait))
}

// yieldToWAL waits, up to walWaitMax, for the WAL batch in flight (if
// any) to be acknowledged.
func (s *Store) yieldToWAL() {
	if busy := s.wal.InFlight(); !isClosed(busy) {
		t := time.NewTimer(walWaitMax)
		select {
		case <-busy:
		case <-t.C:
		}
		t.Stop()
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// pacer bounds a snapshot's write bandwidth while the store is taking
// writes. With no writes arriving it does not wait.
type pacer struct {
	s       *Store
	rate    int64               // bytes per second; 0: never wait
	start   time.Time           // of the current paced stretch
	written int64               // bytes written in it
	walLSN  uint64              // WAL's written LSN when last checked
	idle    func(time.Duration) // told of each wait; may be nil
}

func (s *Store) newPacer(rate int64) *pacer {
	return &pacer{s: s, rate: rate, start: time.Now(), walLSN: s.wal.WrittenLSN()}
}

// wait is called after each n bytes of snapshot written.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return nil
	}
	p.written += int64(n)
	walLSN := p.s.wal.WrittenLSN() // an atomic load: no WAL lock per block
	busy := walLSN != p.walLSN
	p.walLSN = walLSN
	if !busy {
		p.start, p.written = time.Now(), 0
		return nil
	}
	due := time.Duration(float64(p.written) / float64(p.rate) * float64(time.Second))
	ahead := due - time.Since(p.start)
	if ahead <= 0 {
		return nil
	}
	t := time.NewTimer(ahead)
	defer t.Stop()
	start := time.Now()
	if p.idle != nil {
		defer func() { p.idle(time.Since(start)) }()
	}
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freeGradually removes the file at path, shrinking a large one
// removeChunk bytes at a time first, and yielding to the WAL before each
// step. Once ctx is done it removes the rest at once.
func (s *Store) freeGradually(ctx context.Context, path string) error {
	f, err := s.opts.FS.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil {
		for size := st.Size() - removeChunk; size > 0 && ctx.Err() == nil; size -= removeChunk {
			s.yieldToWAL()
			if f.Truncate(size) != nil {
				break // the remove below frees the rest
			}
		}
	}
	return errors.Join(f.Close(), s.opts.FS.Remove(path))
}
