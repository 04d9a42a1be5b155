package wal

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cidstore/cidstore/vfs"
)

// run is the flusher goroutine: the only goroutine that writes, fsyncs or
// rotates segment files. Each round it takes the whole pending buffer
// (swapping it with the spare one, so Append keeps filling a buffer while
// the previous one is being written), writes it, fsyncs under SyncAlways,
// then advances the written/durable LSNs and wakes every waiter of the
// batch at once. If more was appended meanwhile it starts the next round
// immediately, so concurrent writers share one fsync per round.
func (l *Log) run() {
	defer close(l.doneCh)
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
		mode, interval := l.mode, l.interval
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
		case syncReply = <-l.syncReq:
			syncDue = true
		case <-l.wake:
		case <-tickC:
			syncDue = true
		case <-l.closeCh:
			closing = true
		}
		l.flush()
		if syncDue {
			l.syncWritten()
		}
		if syncReply != nil {
			l.mu.Lock()
			syncReply <- l.err
			l.mu.Unlock()
		}
		if closing {
			l.shutdown()
			return
		}
	}
}

// flush writes pending batches until none is left or the log fails.
func (l *Log) flush() {
	for {
		l.mu.Lock()
		if l.err != nil || len(l.pending) == 0 {
			l.mu.Unlock()
			return
		}
		buf, rots := l.pending, l.pendRot
		last := l.nextLSN - 1
		mode := l.mode
		l.pending, l.pendRot = l.spare[:0], l.spareRot[:0]
		l.spare, l.spareRot = nil, nil
		if l.pending == nil {
			l.pending = make([]byte, 0, initialBuffer)
		}
		l.setInflight(l.pendingCh)
		l.pendingCh = make(chan struct{})
		l.inflightLast = last
		if l.spaceWaiters > 0 {
			l.spaceCond.Broadcast()
		}
		l.mu.Unlock()

		err := l.writeBatch(buf, rots, last, mode)

		l.mu.Lock()
		if cap(buf) <= maxRetainedBuffer {
			l.spare = buf[:0]
		}
		l.spareRot = rots[:0]
		l.publish(mode != SyncAlways)
		if err != nil {
			l.fail(err)
		} else {
			close(l.inflightCh)
			l.setInflight(closedChan)
		}
		l.mu.Unlock()
	}
}

// writeBatch writes one batch, rotating segments where Append planned it,
// and fsyncs it under SyncAlways.
func (l *Log) writeBatch(buf []byte, rots []rotation, last uint64, mode SyncMode) error {
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
	if l.switchDue() && l.ready.Load() == nil {
		l.wantSpare()
	}
	if mode == SyncAlways {
		return l.syncActive()
	}
	return nil
}

// write writes whole frames ending with LSN last to the active segment.
func (l *Log) write(b []byte, last uint64) error {
	if len(b) == 0 {
		return nil
	}
	n, err := l.f.Write(b)
	if err != nil && l.releaseSpace(err) {
		// The file offset is just past the n bytes written.
		var m int
		m, err = l.f.Write(b[n:])
		n += m
	}
	l.fSize += int64(n)
	l.writes.Add(1)
	l.bytesWritten.Add(uint64(n))
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("wal: write %s: %w", l.fpath, bare(err))
	}
	l.fWritten = last
	return nil
}

// syncActive fsyncs the active segment if it holds unsynced records.
func (l *Log) syncActive() error {
	if l.fSynced == l.fWritten {
		return nil
	}
	err := vfs.SyncData(l.f)
	l.countFsync(l.fWritten - l.fSynced)
	if err != nil {
		return fmt.Errorf("wal: fsync %s: %w", l.fpath, bare(err))
	}
	l.fSynced = l.fWritten
	return nil
}

// rotate fsyncs and closes the active segment and makes a new segment whose
// first record has LSN first the active one. The old segment is fsynced
// whatever the sync policy, so only the last segment can ever have a torn
// tail.
func (l *Log) rotate(first uint64) error {
	if err := l.syncActive(); err != nil {
		return err
	}
	f := l.f
	l.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: close %s: %w", l.fpath, bare(err))
	}
	l.resume() // a spare may be tried again for the next segment
	used, err := l.useSpare(first)
	if err != nil {
		return err
	}
	if !used {
		nf, path, err := createSegment(l.fs, l.dir, first)
		if err != nil && l.releaseSpace(err) {
			nf, path, err = createSegment(l.fs, l.dir, first)
		}
		if err != nil {
			return err
		}
		l.f, l.fpath, l.fSize, l.fPrealloc = nf, path, SegmentHeaderSize, false
	}
	path := l.fpath
	l.mu.Lock()
	l.segs = append(l.segs, segment{first: first, path: path})
	l.mu.Unlock()
	return nil
}

// maybeSwitch moves a log whose active segment was not preallocated to a
// preallocated one at the start of a batch, once the active segment holds
// at least prepAfter bytes and the preparer has a spare ready; the batch's
// first record then starts the new segment. (writeBatch asks for the spare
// after the write that takes the segment past prepAfter.) Append's
// projection of the segment size does not know about the switch, so the
// new segment is rotated somewhat early, once.
func (l *Log) maybeSwitch(rots []rotation) error {
	if !l.switchDue() || (len(rots) > 0 && rots[0].off == 0) {
		return nil
	}
	if l.ready.Load() == nil {
		return nil // writeBatch asks for one
	}
	return l.rotate(l.fWritten + 1)
}

// syncWritten is the periodic fsync of SyncInterval.
func (l *Log) syncWritten() {
	l.mu.Lock()
	failed := l.err != nil
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
	hook := l.syncHook
	l.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// publish makes the flusher's progress visible. Acknowledgement follows the
// written LSN if ackWritten (SyncInterval, SyncNever) and the fsynced LSN
// otherwise; it never moves backwards. l.mu is held.
func (l *Log) publish(ackWritten bool) {
	l.written.Store(l.fWritten)
	l.synced.Store(l.fSynced)
	ack := l.fSynced
	if ackWritten {
		ack = l.fWritten
	}
	if ack > l.acked.Load() {
		l.acked.Store(ack)
	}
}

// fail records the sticky error and wakes every waiter. l.mu is held.
func (l *Log) fail(cause error) {
	if l.err != nil {
		return
	}
	l.err = fmt.Errorf("wal: log failed, no further writes accepted: %w", cause)
	l.logger.Error("wal: log failed", "err", cause, "written_lsn", l.fWritten, "durable_lsn", l.fSynced)
	l.wakeAll()
}

// wakeAll closes the batch channels and wakes blocked Appends. l.mu is held.
func (l *Log) wakeAll() {
	if l.inflightCh != closedChan {
		close(l.inflightCh)
		l.setInflight(closedChan)
	}
	if l.pendingCh != closedChan {
		close(l.pendingCh)
		l.pendingCh = closedChan
	}
	l.spaceCond.Broadcast()
}

// shutdown runs when Close is called, after the last flush: it fsyncs what
// is unsynced (under every policy), closes the active segment and wakes
// everyone still waiting.
func (l *Log) shutdown() {
	l.mu.Lock()
	failed := l.err != nil
	l.mu.Unlock()
	var syncErr, closeErr error
	if !failed && l.f != nil {
		syncErr = l.syncActive()
	}
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			closeErr = fmt.Errorf("wal: close %s: %w", l.fpath, bare(err))
		}
		l.f = nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.publish(false)
	if syncErr != nil {
		l.fail(syncErr)
	}
	l.exited = true
	l.wakeAll()
	l.closeErr = errors.Join(l.err, closeErr)
}
