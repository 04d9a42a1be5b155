package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/vfs"
)

// Log is an open write-ahead log. All methods are safe for concurrent use.
//
// Its state is grouped by who owns it: what is fixed at Open; what
// appenders share with the flusher, and the policy, life cycle and
// segment list, under mu; the flusher's progress, published atomically;
// the flusher goroutine's own state; the preallocator, a goroutine of its
// own; and the statistics counters.
type Log struct {
	// Fixed at Open.
	fs       vfs.FS
	dir      string
	segSize  int64
	logger   *slog.Logger
	check    func(Record) error
	readOnly bool
	lock     io.Closer    // the directory lock (a no-op without one)
	report   RepairReport // what recovery at Open dropped

	mu   sync.Mutex // guards app and st
	app  appenders
	st   state
	prog progress
	fl   flusher
	pre  *preallocator // nil when preallocation is off
	ctr  counters

	// replayMu keeps TruncateBefore from removing segments under Replay.
	replayMu sync.RWMutex
}

// appenders is what Append shares with the flusher, under Log.mu: the
// buffer records are encoded into and the LSNs they get, and the two
// batches that writers wait for (the one the flusher is writing, and the
// pending one that Append fills).
type appenders struct {
	pending      []byte     // encoded frames not yet handed to the flusher
	pendRot      []rotation // rotations inside pending
	spare        []byte     // the other flush buffer, handed back for reuse
	spareRot     []rotation
	nextLSN      uint64
	projSize     int64     // size of the active segment once pending is written
	spaceCond    sync.Cond // Append waiting for the pending buffer to drain
	spaceWaiters int
	appends      uint64
	appendBytes  uint64

	inflight    []batchWait   // batches taken by the flusher, not yet acknowledged, in LSN order
	inflightPub atomic.Value  // chan struct{}: the oldest one's channel, for InFlight without Log.mu
	pendingCh   chan struct{} // closed when the pending batch is acknowledged
}

// state is the rest of what Log.mu guards.
type state struct {
	mode     SyncMode // set by SetSync, read by the flusher for each batch
	interval time.Duration
	err      error     // sticky failure
	closing  bool      // Close has been called
	exited   bool      // the flusher has stopped
	closeErr error     // result of the flusher's shutdown
	segs     []segment // in LSN order: the flusher appends, TruncateBefore removes
}

// progress is how far the flusher has got, for reads without Log.mu.
type progress struct {
	acked   atomic.Uint64 // highest LSN acknowledged per policy
	written atomic.Uint64 // highest LSN written to the OS
	synced  atomic.Uint64 // highest LSN fsynced
}

// counters are the statistics Stats reads atomically.
type counters struct {
	preallocated atomic.Uint64 // segments started on a spare
	writes       atomic.Uint64
	bytesWritten atomic.Uint64
	fsyncs       atomic.Uint64
	perFsync     [histBuckets]atomic.Uint64
}

// flusher is the flusher goroutine's: the active segment, which nothing
// else touches, and the channels that reach the goroutine.
type flusher struct {
	f        vfs.File
	path     string
	size     int64  // bytes of the active segment in use (header and records)
	prealloc bool   // the active segment was zero-filled ahead
	written  uint64 // last LSN written to the active segment
	synced   uint64 // last LSN fsynced

	syncs    chan syncReq    // to the syncer goroutine (see syncer.go)
	syncDone chan struct{}   // closed when the syncer has exited
	wake     chan struct{}   // records are pending (capacity 1)
	syncReq  chan chan error // Sync requests
	closeCh  chan struct{}   // closed by Close
	doneCh   chan struct{}   // closed when the goroutine has exited
	syncHook func()          // tests: called after each periodic fsync
}

const (
	// maxPending is the amount of encoded but unwritten data above which
	// Append blocks until the flusher takes the pending buffer.
	maxPending = 64 << 20
	// initialBuffer is the initial capacity of each flush buffer.
	initialBuffer = 256 << 10
	// maxRetainedBuffer is the largest flush buffer kept for reuse; larger
	// ones (after a burst of big records) are released.
	maxRetainedBuffer = 16 << 20
)

// rotation marks where, inside a flush buffer, a new segment starts.
type rotation struct {
	off int    // offset in the buffer of the first frame of the new segment
	lsn uint64 // LSN of that frame, which names the segment
}

// closedChan is a permanently closed channel.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Open opens the log in opts.Dir, creating it if needed, and starts its
// flusher goroutine.
//
// Open validates every segment in full: every record's checksum, that LSNs
// increase by one within and across segments, and every segment header. A
// damaged record at the tail of the last segment with no valid record after
// it is a torn write: the segment is truncated there (and fsynced), the
// dropped bytes are logged and counted in Stats.TornBytesDropped. Any other
// damage makes Open fail with a *CorruptError naming the file and offset,
// unless opts.Repair is set (see Repair). Unless opts.NoLock (or
// ReadOnly) is set, Open takes an exclusive lock on the directory (file
// LOCK); a second Open of the same directory then fails with an error
// matching vfs.ErrLocked.
//
// Open is Recover followed by Finish, for a caller that does not read the
// records on the way.
func Open(opts Options) (*Log, error) {
	r, err := Recover(opts)
	if err != nil {
		return nil, err
	}
	return r.Finish()
}

// start returns the log over what recovery found, ready for appending: it
// opens the last segment after its last record (or creates the first one)
// and starts the flusher and, unless it is off, the preallocator. For a
// read-only log it starts nothing.
func start(opts Options, lock io.Closer, rec recovered) (*Log, error) {
	if opts.ReadOnly {
		return startReadOnly(opts, lock, rec), nil
	}
	fs, dir := opts.FS, opts.Dir
	var (
		f        vfs.File
		path     string
		size     int64
		prealloc bool
		err      error
	)
	if len(rec.segs) == 0 {
		f, path, err = createSegment(fs, dir, rec.next)
		if err != nil {
			return nil, err
		}
		rec.segs = append(rec.segs, segment{first: rec.next, path: path})
		size = SegmentHeaderSize
	} else {
		path = rec.segs[len(rec.segs)-1].path
		f, err = fs.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("wal: open segment: %w", err)
		}
		// Appends continue after the last record, over the zeros of a
		// preallocated segment if it was one.
		end, err := f.Seek(0, io.SeekEnd)
		if err == nil {
			size, err = f.Seek(rec.end, io.SeekStart)
		}
		if err != nil {
			return nil, fmt.Errorf("wal: seek %s: %w", path, errors.Join(err, f.Close()))
		}
		prealloc = end > size
		// Whatever recovery found may only be in the page cache (the
		// previous process may have died before an fsync); make it
		// durable before anything is acknowledged on top of it.
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("wal: fsync %s: %w", path, errors.Join(err, f.Close()))
		}
	}
	l := newLog(opts, lock, rec)
	l.app.pending = make([]byte, 0, initialBuffer)
	l.app.spare = make([]byte, 0, initialBuffer)
	l.app.projSize = size
	l.fl.f, l.fl.path, l.fl.size, l.fl.prealloc = f, path, size, prealloc
	l.fl.written, l.fl.synced = rec.last, rec.last
	if !opts.NoPreallocate && l.segSize >= minPrealloc {
		l.pre = newPreallocator(fs, dir, l.segSize, l.logger)
	}
	go l.syncer()
	go l.run()
	return l, nil
}

// newLog returns a Log over what recovery found, ready but for the
// active segment, the flush buffers and the goroutines.
func newLog(opts Options, lock io.Closer, rec recovered) *Log {
	l := &Log{
		fs:       opts.FS,
		dir:      opts.Dir,
		segSize:  opts.SegmentSize,
		logger:   opts.Logger,
		check:    opts.CheckRecord,
		readOnly: opts.ReadOnly,
		lock:     lock,
		report:   rec.report,
	}
	l.app.nextLSN = rec.next
	l.app.pendingCh = make(chan struct{})
	l.app.spaceCond.L = &l.mu
	l.app.inflightPub.Store(closedChan)
	l.st.mode, l.st.interval = opts.Sync, opts.SyncInterval
	l.st.segs = rec.segs
	l.fl.syncs = make(chan syncReq, 1)
	l.fl.syncDone = make(chan struct{})
	l.fl.wake = make(chan struct{}, 1)
	l.fl.syncReq = make(chan chan error)
	l.fl.closeCh = make(chan struct{})
	l.fl.doneCh = make(chan struct{})
	l.prog.acked.Store(rec.last)
	l.prog.written.Store(rec.last)
	l.prog.synced.Store(rec.last)
	return l
}

// startReadOnly returns the read-only log over what recovery found (see
// Options.ReadOnly).
func startReadOnly(opts Options, lock io.Closer, rec recovered) *Log {
	if len(rec.segs) == 0 {
		// The segment a writer would create; nothing reads it, since
		// the log holds no record.
		rec.segs = []segment{{first: rec.next, path: filepath.Join(opts.Dir, segmentName(rec.next))}}
	}
	l := newLog(opts, lock, rec)
	l.st.err, l.st.exited = ErrReadOnly, true
	close(l.fl.doneCh) // no flusher
	close(l.fl.syncDone)
	return l
}

// Close writes and fsyncs everything appended so far (whatever the sync
// policy), stops the flusher and the preallocator, closes the active
// segment and releases the directory lock. It returns the sticky error if
// the log had failed, and any error from the final fsync or close. Later
// calls return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.st.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	l.st.closing = true
	l.app.spaceCond.Broadcast()
	l.mu.Unlock()
	close(l.fl.closeCh)
	<-l.fl.doneCh
	err := l.st.closeErr
	if l.pre != nil {
		err = errors.Join(err, l.pre.Close())
	}
	if lerr := l.lock.Close(); lerr != nil {
		err = errors.Join(err, fmt.Errorf("wal: release lock: %w", lerr))
	}
	return err
}
