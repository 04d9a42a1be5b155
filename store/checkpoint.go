package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/triples"
	"github.com/cidstore/cidstore/vfs"
)

// CheckpointStats describe the checkpoints taken since Open.
type CheckpointStats struct {
	Count        int64         // checkpoints written
	LastLSN      uint64        // cut LSN of the newest snapshot
	LastDuration time.Duration // time to write the last one
	LastBytes    int64         // its size on disk
	LastPairs    int64         // pairs in it
	LastTriples  int64         // triples in it
	LastStall    time.Duration // how long the cut held the shard locks
}

// Checkpoint writes a snapshot of the whole store and then drops what it
// makes obsolete: WAL segments wholly below the oldest kept snapshot and
// snapshots beyond the newest SnapshotsKept.
//
// The snapshot is a consistent cut: every shard is locked (in order) just
// long enough to clone its B-tree and read the last assigned LSN, then the
// file is written from the clones while writers go on. The file is written
// to a temporary name, fsynced, renamed and the directory fsynced; a
// cancelled ctx or an error leaves no partial file. Only one checkpoint
// runs at a time; a second caller waits for the first. If nothing was
// written since the last snapshot, Checkpoint does nothing.
func (s *Store) Checkpoint(ctx context.Context) error {
	return s.checkpoint(ctx, nil, false)
}

// checkpoint implements Checkpoint. The time it sleeps to keep to
// CheckpointPace is reported to mp (the checkpointer's maintenance pacer,
// nil otherwise) as idle, so that only working time counts against
// Config.WorkerDuty. force writes a snapshot even when no WAL record was
// logged since the last one, as Import needs: its pairs are in no record.
func (s *Store) checkpoint(ctx context.Context, mp *maintenance.Pacer, force bool) error {
	if s.wal == nil {
		return fmt.Errorf("%w: Checkpoint needs a directory", ErrInMemory)
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	if err := s.readOnly(); err != nil {
		return err
	}
	cutStart := time.Now()
	views, tviews, mark := s.cutAll()
	stall := time.Since(cutStart)
	lsn := mark.lsn
	if views == nil {
		return ErrClosed
	}
	if !force && lsn == s.snapLSN.Load() {
		return nil
	}
	// No snapshot may cover LSNs the WAL could still lose: after a crash
	// the log would hand them out again.
	if err := s.wal.Sync(); err != nil {
		return s.fail(err)
	}
	start := time.Now()
	parts, h := snapshotParts(views, tviews, lsn)
	path := Layout{s.dir}.Snapshot(lsn)
	if err := s.asideUntrusted(snapFile{lsn, path}); err != nil {
		return err
	}
	// Leave a core, and disk bandwidth, to the writers that go on during
	// the checkpoint.
	bw := s.newPacer(s.cfg.Load().CheckpointPace)
	bw.idle = mp.Idle
	pace := snapshot.WithPacer(bw.wait)
	opts := append(s.encoderOptions(), pace)
	sum, err := snapshot.WriteFile(ctx, s.opts.FS, path, h, parts, opts...)
	if err != nil {
		return fmt.Errorf("cidstore: checkpoint: %w", err)
	}
	d := time.Since(start)
	s.snapLSN.Store(lsn)
	s.trust.add(lsn)
	s.ckptStatsMu.Lock()
	s.ckpt.Count++
	s.ckpt.LastLSN, s.ckpt.LastDuration, s.ckpt.LastBytes, s.ckpt.LastPairs, s.ckpt.LastStall = lsn, d, sum.Bytes, sum.Pairs, stall
	s.ckpt.LastTriples = sum.Triples
	s.ckptStatsMu.Unlock()
	s.walAtSnap.Store(mark.bytes)
	s.maint.lastCheckpointAt.Store(time.Now().UnixNano())
	s.opts.Logger.Info("cidstore: checkpoint", "lsn", lsn, "pairs", sum.Pairs, "bytes", sum.Bytes,
		"duration", d, "stall", stall)
	return s.retain(ctx)
}

// cut takes a consistent point-in-time view of every shard and the LSN it
// corresponds to: with every shard lock held no operation is between
// "logged" and "published", so the view holds exactly the operations up to
// the WAL's last LSN. Returns nil views after Close.
func (s *Store) cut() ([]*shard.View, walMark) {
	views, _, mark := s.cutAll()
	return views, mark
}

// cutAll is cut with views of the SPO triple index too, taken under the
// same locks (every pair shard's, then every triple index shard's): a
// triple batch is in the cut whole or not at all.
func (s *Store) cutAll() ([]*shard.View, []*triples.View, walMark) {
	unlock := s.lockAll()
	defer unlock()
	if s.cutHook != nil {
		s.cutHook()
	}
	var views []*shard.View
	var tviews []*triples.View
	var mark walMark
	if !s.closed.Load() {
		views = make([]*shard.View, len(s.shards))
		for i, sh := range s.shards {
			views[i] = sh.View()
		}
		tviews = make([]*triples.View, s.triples.Shards())
		for i := range tviews {
			tviews[i] = s.triples.View(i)
		}
		if s.wal != nil {
			lsn, bytes := s.wal.Appended()
			mark = walMark{lsn, int64(bytes)}
		}
	}
	return views, tviews, mark
}

// lockAll locks every shard, pair shards in order and then the triple
// index shards in their lock order, and returns the function that
// unlocks them; callers defer it, so that a panic while the locks are
// held (a bug, which the maintenance scheduler recovers in a worker) does
// not leave the store locked.
func (s *Store) lockAll() (unlock func()) {
	for _, sh := range s.shards {
		sh.Lock()
	}
	s.triples.LockAll()
	return func() {
		s.triples.UnlockAll()
		for _, sh := range s.shards {
			sh.Unlock()
		}
	}
}

// walMark is where the WAL stood at a cut: its last LSN and the payload
// bytes appended so far.
type walMark struct {
	lsn   uint64
	bytes int64
}

// snapshotParts returns the partitions and header of a snapshot at lsn:
// one partition per pair shard and, when the store holds triples, one per
// SPO shard after them.
func snapshotParts(views []*shard.View, tviews []*triples.View, lsn uint64) ([]snapshot.Part, snapshot.Header) {
	parts := viewParts(views)
	n := 0
	for _, v := range tviews {
		n += v.Keys()
	}
	if n > 0 {
		for _, v := range tviews {
			parts = append(parts, v.Entries())
		}
	} else {
		tviews = nil
	}
	return parts, snapshot.Header{LSN: lsn, Parts: len(parts), Triples: len(tviews)}
}

// viewParts presents shard views as snapshot partitions, one per shard.
func viewParts(views []*shard.View) []snapshot.Part {
	parts := make([]snapshot.Part, len(views))
	for i, v := range views {
		parts[i] = viewPart(v)
	}
	return parts
}

// viewPart presents a shard view as a snapshot partition, reusing one
// values buffer.
func viewPart(v *shard.View) snapshot.Part {
	return func(yield func(cid.CID, []cid.CID) bool) {
		buf := make([]cid.CID, 0, 64)
		v.Ascend(nil, nil, func(e shard.Entry) bool {
			buf = e.AppendValues(buf[:0])
			return yield(e.Key(), buf)
		})
	}
}

// snapTrust says which snapshot files retention may count as snapshots:
// those that validated (the one recovery loaded and those written since)
// and, since recovery tried the newest first, every file older than the
// one it loaded. A file named like a snapshot that recovery skipped, or
// that appeared since, is not one: counting it could retire the valid
// snapshots and the WAL that only they and it cover.
type snapTrust struct {
	valid []uint64 // cut LSNs of snapshots that validated
	below uint64   // files with a cut below it count too (the loaded one's)
}

func (t *snapTrust) trusted(lsn uint64) bool {
	return lsn < t.below || slices.Contains(t.valid, lsn)
}

func (t *snapTrust) add(lsn uint64) {
	if !slices.Contains(t.valid, lsn) {
		t.valid = append(t.valid, lsn)
	}
}

// retain moves aside snapshot files it does not trust (see snapTrust),
// removes trusted snapshots beyond the newest SnapshotsKept and WAL
// segments wholly below the oldest kept snapshot, so every kept snapshot
// can still be brought up to date from the WAL. The caller holds ckptMu.
func (s *Store) retain(ctx context.Context) error {
	return s.keepNewest(ctx, s.snapshotsKept())
}

// keepNewest is retain with keep, at least 1, in place of SnapshotsKept.
// The caller holds ckptMu.
func (s *Store) keepNewest(ctx context.Context, keep int) error {
	list, _, err := listSnapshots(s.opts.FS, s.dir)
	if err != nil {
		return err
	}
	var errs []error
	var snaps []snapFile
	for _, sf := range list {
		if s.trust.trusted(sf.lsn) {
			snaps = append(snaps, sf)
		} else if err := s.asideUntrusted(sf); err != nil {
			errs = append(errs, err)
		}
	}
	if len(snaps) == 0 {
		return errors.Join(errs...)
	}
	removed := 0
	for _, sf := range snaps[min(keep, len(snaps)):] {
		if err := s.removeGradually(ctx, sf.path); err != nil {
			errs = append(errs, fmt.Errorf("cidstore: remove old snapshot: %w", err))
			continue
		}
		s.trust.valid = slices.DeleteFunc(s.trust.valid, func(l uint64) bool { return l == sf.lsn })
		removed++
	}
	if removed > 0 {
		if err := s.opts.FS.SyncDir(Layout{s.dir}.Snapshots()); err != nil {
			errs = append(errs, fmt.Errorf("cidstore: sync snapshot dir: %w", err))
		}
	}
	oldest := snaps[min(keep, len(snaps))-1]
	if err := s.wal.TruncateBefore(oldest.lsn + 1); err != nil {
		errs = append(errs, fmt.Errorf("cidstore: drop WAL below LSN %d: %w", oldest.lsn+1, err))
	}
	return errors.Join(errs...)
}

// asideUntrusted moves the file sf aside if there is one and retention
// does not trust it (see snapTrust): before a checkpoint writes its
// snapshot under the same name, and at retention.
func (s *Store) asideUntrusted(sf snapFile) error {
	if s.trust.trusted(sf.lsn) {
		return nil
	}
	if _, err := s.opts.FS.Stat(sf.path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	to, err := vfs.MoveAside(s.opts.FS, sf.path)
	if err != nil {
		return fmt.Errorf("cidstore: move aside %s: %w", sf.path, err)
	}
	s.opts.Logger.Warn("cidstore: moved aside a file named like a snapshot that did not validate",
		"file", sf.path, "to", to)
	return nil
}

// removeChunk is how much of a large file removeGradually frees per step.
const removeChunk = 8 << 20

// removeGradually deletes the snapshot at path. It is first renamed to a
// temporary name (made durable), so that it stops being a snapshot before
// any of it goes, and then freed with freeGradually. A crash part way
// leaves a temporary file, which Open and GC remove.
func (s *Store) removeGradually(ctx context.Context, path string) error {
	tmp := path + ".del.tmp"
	if err := s.opts.FS.Rename(path, tmp); err != nil {
		return err
	}
	if err := s.opts.FS.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return s.freeGradually(ctx, tmp)
}

// freeGradually removes the file at path, shrinking a large one
// removeChunk bytes at a time first. Freeing a large file's blocks in one
// go holds the filesystem's journal, and every WAL fsync meanwhile waits
// behind it; in steps, each fsync carries only a little of the work.
// Between steps it lets an in-flight WAL batch finish first, as the
// snapshot encoders do. Once ctx is done it removes the rest at once.
func (s *Store) freeGradually(ctx context.Context, path string) error {
	f, err := s.opts.FS.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil {
		for size := st.Size() - removeChunk; size > 0 && ctx.Err() == nil; size -= removeChunk {
			s.waitWAL()
			if f.Truncate(size) != nil {
				break // the remove below frees the rest
			}
		}
	}
	return errors.Join(f.Close(), s.opts.FS.Remove(path))
}

func (s *Store) snapshotsKept() int { return s.cfg.Load().SnapshotsKept }

// checkpointStats returns statistics about the checkpoints taken since
// Open (Stats().Checkpoints).
func (s *Store) checkpointStats() CheckpointStats {
	s.ckptStatsMu.Lock()
	defer s.ckptStatsMu.Unlock()
	return s.ckpt
}

// pacer bounds a checkpoint's write bandwidth while the store is taking
// writes: the snapshot's write-back otherwise fills the disk queue and
// every WAL fsync waits behind it. With no writes arriving it does not
// wait, so a checkpoint of an idle store runs at full speed.
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

// encoderOptions are the snapshot encoder settings for a live store: leave
// a core to the writers, and at each yield point, while the WAL flusher is
// writing or fsyncing a batch, wait (up to encoderWaitMax) for it to
// finish. A goroutine in fsync keeps its P until the runtime's monitor
// takes it back, so on a small machine an encoder running meanwhile would
// hold the only other P and the writers due to append next would queue.
func (s *Store) encoderOptions() []snapshot.Option {
	opts := []snapshot.Option{snapshot.WithParallelism(max(1, runtime.GOMAXPROCS(0)-1))}
	if s.wal == nil {
		return opts
	}
	return append(opts, snapshot.WithYield(func() {
		s.waitWAL()
		runtime.Gosched()
	}))
}

// waitWAL waits, up to encoderWaitMax, for the WAL batch in flight (if
// any) to be acknowledged.
func (s *Store) waitWAL() {
	if busy := s.wal.InFlight(); !isClosed(busy) {
		t := time.NewTimer(encoderWaitMax)
		select {
		case <-busy:
		case <-t.C:
		}
		t.Stop()
	}
}

// encoderWaitMax bounds one wait of an encoder for the WAL flusher, so a
// checkpoint under constant writes still progresses.
const encoderWaitMax = 2 * time.Millisecond

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
