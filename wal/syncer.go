package wal

import (
	"fmt"

	"github.com/cidstore/cidstore/vfs"
)

// Pipelined group commit under SyncAlways: the flusher writes batch k+1
// while the syncer goroutine fsyncs batch k.
//
// The flusher takes a batch, writes it and hands the syncer its last LSN
// on a channel of capacity one, then takes the next batch at once. The
// syncer takes a request, and with it every request already queued, and
// fsyncs the active segment once for all of them: what the flusher wrote
// before the requests were sent is then durable (an fsync covers every
// write that returned before it started). It then acknowledges, under
// Log.mu, every batch up to the highest LSN it was handed, oldest first,
// closing one channel per batch. So at most three batches are between
// Append and acknowledgement (one being fsynced, one queued, one being
// written), and acknowledgements follow LSN order: the syncer alone moves
// the acknowledged LSN under SyncAlways, and only forwards.
//
// Failures stay sticky and ordered. A failed fsync fails the log: every
// batch not yet acknowledged (all at or after the ones that fsync was
// for) wakes with the error, and no later fsync acknowledges anything.
// A failed write waits until the syncer is idle (quiesce) before it fails
// the log, so the batches written before it are acknowledged if their
// fsync succeeds and never fail because of a later batch.
//
// Everything else that fsyncs, closes or replaces the active segment
// (rotation, the switch to a spare, the periodic fsync of SyncInterval,
// Sync, Close) runs in the flusher after quiesce, with the syncer idle;
// the channel hand-over orders the two goroutines' uses of the segment.

// batchWait is a batch taken by the flusher: its last LSN and the
// channel closed when it is acknowledged (or the log fails).
type batchWait struct {
	last uint64
	ch   chan struct{}
}

// syncReq asks the syncer to make records up to last durable, or, with
// idle set, to reply on it once every earlier request is done.
type syncReq struct {
	last uint64
	idle chan struct{}
}

// syncer is the goroutine that fsyncs written batches under SyncAlways. It
// exits when Log.fl.syncs is closed (by shutdown).
func (l *Log) syncer() {
	defer close(l.fl.syncDone)
	for req := range l.fl.syncs {
		target, idle := req.last, req.idle
	more:
		for idle == nil {
			select {
			case r, ok := <-l.fl.syncs:
				if !ok {
					break more
				}
				target, idle = max(target, r.last), r.idle
			default:
				break more
			}
		}
		l.syncTo(target)
		if idle != nil {
			close(idle)
		}
	}
}

// syncTo fsyncs the active segment and acknowledges every batch up to LSN
// target, unless that is done or the log has failed.
func (l *Log) syncTo(target uint64) {
	l.mu.Lock()
	synced, failed := l.fl.synced, l.st.err != nil
	l.mu.Unlock()
	if failed || target <= synced {
		return
	}
	err := vfs.SyncData(l.fl.f)
	l.countFsync(target - synced)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.fail(fmt.Errorf("wal: fsync %s: %w", l.fl.path, bare(err)))
		return
	}
	l.fl.synced = target
	l.prog.synced.Store(target)
	l.ack(target)
}

// quiesce returns once the syncer has finished every request sent before
// the call. Only the flusher calls it.
func (l *Log) quiesce() {
	idle := make(chan struct{})
	l.fl.syncs <- syncReq{idle: idle}
	<-idle
}
