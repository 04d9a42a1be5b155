package wal

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/cidstore/cidstore/vfs"
)

// run is the flusher goroutine: the only goroutine that writes, closes or
// rotates segment files, and the only one that fsyncs them but for the
// syncer's group-commit fsyncs under SyncAlways (syncer.go). Each round it
// takes the whole pending buffer (swapping it with the spare one, so
// Append keeps filling a buffer while the previous one is being written)
// and writes it; under SyncAlways the syncer then fsyncs it while the next
// round is written, under the other policies the batch is acknowledged
// once written. If more was appended meanwhile it starts the next round
// immediately, so concurrent writers share one fsync.
func (l *Log) run() {
	defer close(l.fl.doneCh)
	var (
		ticker    *time.Ticker
		tickC     <-chan time.Time
		tickEvery time.Duration
	)
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		l.mu.Lock()
		mode, interval := l.st.mode, l.st.interval
		l.mu.Unlock()
		switch {
		case mode == SyncInterval && ticker == nil:
			ticker = time.NewTicker(interval)
			tickC, tickEvery = ticker.C, interval
		case mode == SyncInterval && interval != tickEvery:
			ticker.Reset(interval)
			tickEvery = interval
		case mode != SyncInterval && ticker != nil:
			ticker.Stop()
			ticker, tickC = nil, nil
		}
		syncDue, closing := false, false
		var syncReply chan error
		select {
		case syncReply = <-l.fl.syncReq:
			syncDue = true
		case <-l.fl.wake:
		case <-tickC:
			syncDue = true
		case <-l.fl.closeCh:
			closing = true
		}
		l.flush()
		if syncDue {
			l.syncWritten()
		}
		if syncReply != nil {
			l.mu.Lock()
			syncReply <- l.st.err
			l.mu.Unlock()
		}
		if closing {
			l.shutdown()
			return
		}
	}
}

// flush writes pending batches until none is left or the log fails.
// Under SyncAlways it hands each written batch to the syncer and goes on
// with the next one while the syncer fsyncs (see syncer.go); under the
// other policies it acknowledges a batch once written.
func (l *Log) flush() {
	a := &l.app
	for {
		l.mu.Lock()
		if l.st.err != nil || len(a.pending) == 0 {
			l.mu.Unlock()
			return
		}
		buf, rots := a.pending, a.pendRot
		last := a.nextLSN - 1
		mode := l.st.mode
		a.pending, a.pendRot = a.spare[:0], a.spareRot[:0]
		a.spare, a.spareRot = nil, nil
		if a.pending == nil {
			a.pending = make([]byte, 0, initialBuffer)
		}
		a.inflight = append(a.inflight, batchWait{last: last, ch: a.pendingCh})
		if len(a.inflight) == 1 {
			l.publishInflight()
		}
		a.pendingCh = make(chan struct{})
		if a.spaceWaiters > 0 {
			a.spaceCond.Broadcast()
		}
		l.mu.Unlock()

		err := l.writeBatch(buf, rots, last)
		if err != nil {
			// Batches written before this one are acknowledged if their
			// fsync succeeds: the failure is after them.
			l.quiesce()
		}

		l.mu.Lock()
		if cap(buf) <= maxRetainedBuffer {
			a.spare = buf[:0]
		}
		a.spareRot = rots[:0]
		l.prog.written.Store(l.fl.written)
		if err != nil {
			l.fail(err)
		} else if mode != SyncAlways {
			l.ack(l.fl.written)
		}
		l.mu.Unlock()
		if err == nil && mode == SyncAlways {
			l.fl.syncs <- syncReq{last: last}
		}
	}
}

// writeBatch writes one batch, rotating segments where Append planned it.
func (l *Log) writeBatch(buf []byte, rots []rotation, last uint64) error {
	if err := l.maybeSwitch(rots); err != nil {
		return err
	}
	prev := 0
	for _, r := range rots {
		if err := l.write(buf[prev:r.off], r.lsn-1); err != nil {
			return err
		}
		if err := l.rotate(r.lsn); err != nil {
			return err
		}
		prev = r.off
	}
	if err := l.write(buf[prev:], last); err != nil {
		return err
	}
	if l.switchDue() && !l.pre.isReady() {
		l.pre.want()
	}
	return nil
}

// write writes whole frames ending with LSN last to the active segment.
func (l *Log) write(b []byte, last uint64) error {
	if len(b) == 0 {
		return nil
	}
	n, err := l.fl.f.Write(b)
	if err != nil && l.releaseSpace(err) {
		// The file offset is just past the n bytes written.
		var m int
		m, err = l.fl.f.Write(b[n:])
		n += m
	}
	l.fl.size += int64(n)
	l.ctr.writes.Add(1)
	l.ctr.bytesWritten.Add(uint64(n))
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("wal: write %s: %w", l.fl.path, bare(err))
	}
	l.fl.written = last
	return nil
}

// syncActive fsyncs the active segment if it holds unsynced records. The
// flusher calls it only while the syncer is idle (quiesce).
func (l *Log) syncActive() error {
	fl := &l.fl
	if fl.synced == fl.written {
		return nil
	}
	err := vfs.SyncData(fl.f)
	l.countFsync(fl.written - fl.synced)
	if err != nil {
		return fmt.Errorf("wal: fsync %s: %w", fl.path, bare(err))
	}
	fl.synced = fl.written
	return nil
}

// syncWritten is the periodic fsync of SyncInterval, and Sync's.
func (l *Log) syncWritten() {
	l.quiesce()
	l.mu.Lock()
	failed := l.st.err != nil
	l.mu.Unlock()
	if failed {
		return
	}
	err := l.syncActive()
	l.mu.Lock()
	l.publish(false)
	if err != nil {
		l.fail(err)
	}
	hook := l.fl.syncHook
	l.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// publish makes the flusher's progress visible and acknowledges what the
// policy allows: the written LSN if ackWritten (SyncInterval, SyncNever),
// the fsynced LSN otherwise. l.mu is held and the syncer is idle.
func (l *Log) publish(ackWritten bool) {
	l.prog.written.Store(l.fl.written)
	l.prog.synced.Store(l.fl.synced)
	ack := l.fl.synced
	if ackWritten {
		ack = l.fl.written
	}
	l.ack(ack)
}

// ack acknowledges every record up to LSN lsn, unless the log has failed:
// it advances the acknowledged LSN (never backwards) and wakes the waiters
// of every batch it covers, oldest first, one channel per batch. l.mu is
// held.
func (l *Log) ack(lsn uint64) {
	if l.st.err != nil {
		return
	}
	if lsn > l.prog.acked.Load() {
		l.prog.acked.Store(lsn)
	}
	a := &l.app
	n := 0
	for n < len(a.inflight) && a.inflight[n].last <= lsn {
		close(a.inflight[n].ch)
		n++
	}
	if n == 0 {
		return
	}
	k := copy(a.inflight, a.inflight[n:])
	clear(a.inflight[k:])
	a.inflight = a.inflight[:k]
	l.publishInflight()
}

// publishInflight makes the oldest in-flight batch's channel (or a closed
// one) what InFlight returns. l.mu is held.
func (l *Log) publishInflight() {
	ch := closedChan
	if len(l.app.inflight) > 0 {
		ch = l.app.inflight[0].ch
	}
	l.app.inflightPub.Store(ch) // a channel is a pointer: no allocation
}

// fail records the sticky error and wakes every waiter. l.mu is held.
func (l *Log) fail(cause error) {
	if l.st.err != nil {
		return
	}
	l.st.err = fmt.Errorf("wal: log failed, no further writes accepted: %w", cause)
	l.logger.Error("wal: log failed", "err", cause, "written_lsn", l.prog.written.Load(), "durable_lsn", l.prog.synced.Load())
	l.wakeAll()
}

// wakeAll closes the batch channels and wakes blocked Appends. l.mu is held.
func (l *Log) wakeAll() {
	a := &l.app
	for _, b := range a.inflight {
		close(b.ch)
	}
	clear(a.inflight)
	a.inflight = a.inflight[:0]
	l.publishInflight()
	if a.pendingCh != closedChan {
		close(a.pendingCh)
		a.pendingCh = closedChan
	}
	a.spaceCond.Broadcast()
}

// shutdown runs when Close is called, after the last flush: it fsyncs what
// is unsynced (under every policy), closes the active segment and wakes
// everyone still waiting.
func (l *Log) shutdown() {
	l.quiesce()
	close(l.fl.syncs)
	<-l.fl.syncDone
	l.mu.Lock()
	failed := l.st.err != nil
	l.mu.Unlock()
	var syncErr, closeErr error
	if !failed && l.fl.f != nil {
		syncErr = l.syncActive()
	}
	if l.fl.f != nil {
		if err := l.fl.f.Close(); err != nil {
			closeErr = fmt.Errorf("wal: close %s: %w", l.fl.path, bare(err))
		}
		l.fl.f = nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.publish(false)
	if syncErr != nil {
		l.fail(syncErr)
	}
	l.st.exited = true
	l.wakeAll()
	l.st.closeErr = errors.Join(l.st.err, closeErr)
}

// countFsync counts an fsync that made records records durable.
func (l *Log) countFsync(records uint64) {
	l.ctr.fsyncs.Add(1)
	if records > 0 {
		l.ctr.perFsync[min(bits.Len64(records)-1, histBuckets-1)].Add(1)
	}
}
