package wal

import (
	"errors"
	"fmt"
	"time"
)

// Append adds a record of type typ (which must not be 0) with a copy of
// payload to the log and returns its LSN. It never waits for the disk: the
// record is encoded into the pending buffer and the flusher is signalled.
// Append blocks only as backpressure, while more than 64 MiB of records are
// waiting to be written. Use WaitDurable to wait for the record to become
// durable. After a failure Append returns the sticky error (see Err); after
// Close it returns ErrClosed. Once the log has assigned MaxLSN, Append
// appends nothing and returns an error matching ErrLSNExhausted.
func (l *Log) Append(typ uint8, payload []byte) (uint64, error) {
	if typ == 0 {
		return 0, errors.New("wal: Append: record type 0 is reserved")
	}
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("wal: Append: payload of %d bytes exceeds MaxPayload", len(payload))
	}
	a := &l.app
	l.mu.Lock()
	for {
		if l.st.err != nil {
			err := l.st.err
			l.mu.Unlock()
			return 0, err
		}
		if l.st.closing {
			l.mu.Unlock()
			return 0, ErrClosed
		}
		if len(a.pending) < maxPending {
			break
		}
		a.spaceWaiters++
		a.spaceCond.Wait()
		a.spaceWaiters--
	}
	lsn := a.nextLSN
	if lsn > MaxLSN {
		l.mu.Unlock()
		return 0, fmt.Errorf("wal: Append: LSN %d is the last a log assigns: %w", uint64(MaxLSN), ErrLSNExhausted)
	}
	fsz := frameSize(len(payload))
	if a.projSize+fsz > l.segSize && a.projSize > SegmentHeaderSize {
		a.pendRot = append(a.pendRot, rotation{off: len(a.pending), lsn: lsn})
		a.projSize = SegmentHeaderSize
	}
	a.projSize += fsz
	signal := len(a.pending) == 0
	a.pending = AppendRecord(a.pending, lsn, typ, payload)
	a.nextLSN++
	a.appends++
	a.appendBytes += uint64(len(payload))
	l.mu.Unlock()
	if signal {
		l.signal()
	}
	return lsn, nil
}

// signal wakes the flusher without blocking.
func (l *Log) signal() {
	select {
	case l.fl.wake <- struct{}{}:
	default:
	}
}

// WaitDurable returns nil once the record with LSN lsn is durable according
// to the sync policy in force when its batch was flushed: fsynced under
// SyncAlways, written to the operating system under SyncInterval and
// SyncNever. It returns the sticky error if the log failed before that, or
// ErrClosed if the log was closed without the record becoming durable. A
// record acknowledged before a failure stays acknowledged.
func (l *Log) WaitDurable(lsn uint64) error {
	for {
		if l.prog.acked.Load() >= lsn {
			return nil
		}
		l.mu.Lock()
		if l.prog.acked.Load() >= lsn {
			l.mu.Unlock()
			return nil
		}
		if l.st.err != nil {
			err := l.st.err
			l.mu.Unlock()
			return err
		}
		if l.st.exited {
			l.mu.Unlock()
			return ErrClosed
		}
		if lsn >= l.app.nextLSN {
			last := l.app.nextLSN - 1
			l.mu.Unlock()
			return fmt.Errorf("wal: WaitDurable(%d): LSN not assigned yet (last is %d)", lsn, last)
		}
		ch := l.app.pendingCh
		for _, b := range l.app.inflight {
			if lsn <= b.last {
				ch = b.ch
				break
			}
		}
		l.mu.Unlock()
		<-ch
	}
}

// Sync writes and fsyncs every record appended before the call, whatever
// the sync policy, and returns once they are durable (or the sticky
// error, or ErrClosed). A checkpoint uses it so that no snapshot ever
// covers LSNs the log could still lose.
func (l *Log) Sync() error {
	if l.readOnly {
		return ErrReadOnly
	}
	reply := make(chan error, 1)
	select {
	case l.fl.syncReq <- reply:
		return <-reply
	case <-l.fl.doneCh:
		return ErrClosed
	}
}

// SetSync changes the sync policy of a live log. It applies to batches
// flushed after the call. An interval <= 0 means DefaultSyncInterval.
func (l *Log) SetSync(mode SyncMode, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	l.mu.Lock()
	l.st.mode = mode
	l.st.interval = interval
	l.mu.Unlock()
	l.signal()
}

// LastLSN returns the LSN of the last appended record (0 if none).
func (l *Log) LastLSN() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.app.nextLSN - 1
}

// Appended returns the LSN of the last record appended and the payload
// bytes appended since Open, read together.
func (l *Log) Appended() (last, bytes uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.app.nextLSN - 1, l.app.appendBytes
}

// DurableLSN returns the highest LSN known to be written and fsynced.
// It never covers data that was not successfully written and synced.
func (l *Log) DurableLSN() uint64 { return l.prog.synced.Load() }

// WrittenLSN returns the highest LSN successfully written to the operating
// system (possibly not yet fsynced).
func (l *Log) WrittenLSN() uint64 { return l.prog.written.Load() }

// Err returns the sticky error that stopped the log, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.err
}

// InFlight returns a channel that is closed once the oldest batch the
// flusher is writing (and, under SyncAlways, fsyncing) now has been
// acknowledged, or an already closed channel when no batch is in flight.
// Background work that competes with the flusher for CPU, such as a
// checkpoint's encoder, waits on it to leave the flusher's writers a
// processor while it blocks.
func (l *Log) InFlight() <-chan struct{} { return l.app.inflightPub.Load().(chan struct{}) }
