package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// recover rebuilds the in-memory state: the newest snapshot that
// validates (older ones are tried, with a warning, when a newer one is
// damaged), then the WAL records after its cut LSN, and then opens the
// WAL for appending (s.wal). The WAL is read once: the pass of rc that
// validates it also hands its records to the loaders and to replay
// (going back to its start only when a snapshot fails to validate after
// its records were passed). It fails with ErrCorrupt when the WAL does
// not reach back to the snapshot (or, with no usable snapshot, to the
// first LSN); then s.wal may be open, for the caller to close.
func (s *Store) recover(rc *wal.Recovery) error {
	start := time.Now()
	snaps, temps, err := listSnapshots(s.opts.FS, s.dir)
	if err != nil {
		return err
	}
	if s.opts.ReadOnly {
		temps = nil
	}
	if err := removeTemps(s.opts.FS, temps); err != nil {
		return err
	}
	s.walIn = &walInput{rc: rc}
	defer func() { s.walIn = nil }()
	first := rc.FirstLSN()
	var from, through uint64 // the snapshot's cut; the last WAL record merged
	var merged walRead
	var loaders []*shard.Loader
	var tload *tripleLoad
	var skipped []skippedSnap
	resumeGC := pauseGC() // for the bulk load (see pauseGC)
	defer resumeGC()
	for _, sf := range snaps {
		t0 := time.Now()
		ls, tl := s.newLoaders(), s.newTripleLoad()
		// The WAL records after the cut are read into the same loaders
		// while the snapshot is decoded.
		var wal walRead
		var walErr error
		var failed atomic.Bool // the snapshot did not load: stop reading
		done := make(chan struct{})
		go func() {
			defer close(done)
			// (Only where checkPlan, after the WAL is read, can pass.)
			if sf.lsn+1 >= first {
				wal, walErr = s.mergeWAL(ls, tl, sf.lsn, &failed)
			}
		}()
		pairs, err := s.readSnapshot(sf, ls, tl)
		failed.Store(err != nil)
		<-done
		if err != nil {
			if !errors.Is(err, snapshot.ErrCorrupt) {
				return err
			}
			s.recovery.SnapshotsSkipped++
			skipped = append(skipped, skippedSnap{sf, err})
			s.opts.Logger.Warn("cidstore: snapshot does not validate; trying an older one", "file", sf.path, "err", err)
			runtime.GC() // the failed attempt's loaders, while the collector is paused
			continue
		}
		if walErr != nil {
			return walErr
		}
		from, loaders, tload, merged = sf.lsn, ls, tl, wal
		s.ckpt.trust = snapTrust{valid: []uint64{sf.lsn}, below: sf.lsn}
		s.recovery.SnapshotLSN, s.recovery.SnapshotPairs = sf.lsn, pairs
		s.recovery.SnapshotTriples = tl.count.Load()
		s.recovery.SnapshotDuration = time.Since(t0)
		break
	}
	var replayed walRead
	// Unless the WAL starts too late for any plan, which checkPlan
	// reports once it is read.
	if from+1 >= first {
		if loaders == nil { // no snapshot: the WAL alone
			loaders, tload = s.newLoaders(), s.newTripleLoad()
			if merged, err = s.mergeWAL(loaders, tload, 0, nil); err != nil {
				return err
			}
		}
		through = max(merged.through, from)
		if err := s.loadShards(loaders, through); err != nil {
			return err
		}
		if err := s.loadTriples(tload, through); err != nil {
			return err
		}
		// Replaying records one by one makes garbage in proportion to
		// the log, so it runs with the collector back on.
		resumeGC()
		if replayed, err = s.replay(through + 1); err != nil {
			return err
		}
	}
	if s.wal, err = rc.Finish(); err != nil {
		return err
	}
	if err := checkPlan(from, skipped, first, s.wal.LastLSN(), s.walCheck.lastImport.Load()); err != nil {
		return err
	}
	s.ckpt.snapLSN.Store(from)
	s.recovery.Records = merged.records + replayed.records
	s.recovery.Ops = merged.ops + replayed.ops
	// The checkpointer counts WAL growth since the snapshot, including
	// what recovery read.
	s.ckpt.walAt.Store(-(merged.bytes + replayed.bytes))
	s.recovery.Duration = time.Since(start)
	s.recovery.TornBytes = s.wal.RepairReport().TornBytes
	if s.recovery.Records > 0 || from > 0 || s.recovery.TornBytes > 0 {
		s.opts.Logger.Info("cidstore: recovered", "dir", s.dir, "snapshot_lsn", from,
			"snapshot_pairs", s.recovery.SnapshotPairs, "wal_records", s.recovery.Records,
			"keys", s.Len(), "torn_bytes", s.recovery.TornBytes, "duration", s.recovery.Duration)
	}
	return nil
}

func (s *Store) newLoaders() []*shard.Loader {
	loaders := make([]*shard.Loader, len(s.shards))
	for i, sh := range s.shards {
		loaders[i] = sh.NewLoader()
	}
	return loaders
}

// readSnapshot reads and validates one snapshot into loaders, one per
// shard, and returns its pair count; nothing is published yet.
func (s *Store) readSnapshot(sf snapFile, loaders []*shard.Loader, tl *tripleLoad) (int64, error) {
	// Reserving room for the entries spares the loaders regrowing. The
	// footer declares them (a loader Add per key and per continuation
	// block) once header and footer validate, and a random pair takes 64
	// bytes on disk: junk named like a snapshot, or a sparse file whose
	// footer promises what its blocks do not hold, reserves nothing.
	if fi, err := s.opts.FS.Stat(sf.path); err == nil {
		if _, sum, err := snapshot.ReadFooter(s.opts.FS, sf.path); err == nil {
			n := min(sum.Entries+sum.Blocks, vfs.DiskUsage(fi)/(2*cid.Size))
			per := n / int64(len(loaders))
			for _, l := range loaders {
				l.Grow(int(per + per/8))
			}
		}
	}
	sinks := s.newEntrySinks(loaders)
	_, sum, err := checkSnapshot(context.Background(), s.opts.FS, sf, 0, s.entries(sinks, tl, sf.path))
	sinks.flush()
	return sum.Pairs, err
}

// sinkBatch is how many entries or operations of one shard a batches
// gathers before it adds them to the shard's loader.
const sinkBatch = 64

// entrySinks hands the pair entries of a snapshot to the loaders in
// batches (shard.Loader.AddSingles). The snapshot's decoders call the
// entry callback from several goroutines at once, and one Loader.Add per
// entry spent most of its time moving the loader's lock and the memory
// it writes between the cores. Each sink gathers single-value entries per
// shard; sinks come from a sync.Pool, which keeps one per P, so that a
// sink serves one goroutine at a time and mostly stays on one core. Every
// sink is also listed in all, and flush hands what they still hold to the
// loaders once the decoders are done: correctness does not depend on what
// the pool keeps or drops. Entries with several values (rare) go to Add
// directly; their order relative to the batches does not matter, as
// Loader merges a key's entries whatever their order.
type entrySinks struct {
	s       *Store
	loaders []*shard.Loader
	pool    sync.Pool // of *batches[shard.Single]
	mu      sync.Mutex
	all     []*batches[shard.Single]
}

func (s *Store) newEntrySinks(loaders []*shard.Loader) *entrySinks {
	return &entrySinks{s: s, loaders: loaders}
}

// add adds the entry of key k with values vals (not retained).
func (es *entrySinks) add(k cid.CID, vals []cid.CID) {
	i := es.s.shardOf(k)
	if len(vals) != 1 {
		es.loaders[i].Add(k, vals)
		return
	}
	sk, _ := es.pool.Get().(*batches[shard.Single])
	if sk == nil {
		sk = newBatches(es.loaders, (*shard.Loader).AddSingles)
		es.mu.Lock()
		es.all = append(es.all, sk)
		es.mu.Unlock()
	}
	sk.add(i, shard.Single{Key: k, Value: vals[0]})
	es.pool.Put(sk)
}

// flush adds every entry the sinks still hold to the loaders. It must
// not run concurrently with add.
func (es *entrySinks) flush() {
	for _, sk := range es.all {
		sk.flush()
	}
}

// batches gathers items by shard and hands each shard's to its loader
// with put (Loader.AddSingles or Loader.AddOps), sinkBatch at a time, in
// the order add received them. It is not safe for concurrent use.
type batches[T any] struct {
	loaders []*shard.Loader
	put     func(*shard.Loader, []T) // does not retain the slice
	pend    [][]T                    // by shard
}

func newBatches[T any](loaders []*shard.Loader, put func(*shard.Loader, []T)) *batches[T] {
	return &batches[T]{loaders: loaders, put: put, pend: make([][]T, len(loaders))}
}

// add appends x to shard i's batch and hands the batch on once it is full.
func (b *batches[T]) add(i int, x T) {
	p := b.pend[i]
	if p == nil {
		p = make([]T, 0, sinkBatch)
	}
	p = append(p, x)
	if len(p) == sinkBatch {
		b.put(b.loaders[i], p)
		p = p[:0]
	}
	b.pend[i] = p
}

// flush hands on every batch that add has not.
func (b *batches[T]) flush() {
	for i, p := range b.pend {
		if len(p) > 0 {
			b.put(b.loaders[i], p)
		}
		b.pend[i] = p[:0]
	}
}

// mergeOpsMax bounds how many WAL operations recovery folds into the bulk
// load (about 90 bytes each while it runs); any beyond are replayed one by
// one afterwards.
var mergeOpsMax int64 = 1 << 22 // a variable so tests can shrink it

// walRead is what readWAL read.
type walRead struct {
	through             uint64 // LSN of the last record taken (0: none)
	records, ops, bytes int64
}

// walInput is the WAL as recovery reads it: the records of the one pass
// of a wal.Recovery, in LSN order.
type walInput struct {
	rc   *wal.Recovery
	last uint64 // LSN of the last record taken (0: none)
}

// from makes the next record the one with LSN lsn, if the log holds it,
// and skips those before it. Records already passed are read again from
// the start of the log.
func (w *walInput) from(lsn uint64) error {
	if lsn > w.last {
		return nil
	}
	w.last = 0
	return w.rc.Rewind()
}

// readWAL decodes the WAL records from LSN from on, in log order, and calls
// fn for each pair operation, and tfn for each triple operation, with its
// record's LSN. Before each record it asks
// more (if not nil) whether to go on; a false answer ends the read without
// an error. A record that does not decode is corruption.
func (s *Store) readWAL(from uint64, more func(walRead) bool, fn func(lsn uint64, o op),
	tfn func(lsn uint64, o TripleOp)) (walRead, error) {
	var rd walRead
	in := s.walIn
	if err := in.from(from); err != nil {
		return rd, err
	}
	for more == nil || more(rd) {
		r, err := in.rc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rd, err
		}
		in.last = r.LSN
		if r.LSN < from {
			continue
		}
		if isTripleRecord(r.Type) {
			err = decodeTripleOps(r.Type, r.Payload, func(o TripleOp) {
				rd.ops++
				tfn(r.LSN, o)
			})
		} else {
			err = decodeOps(r.Type, r.Payload, func(o op) {
				rd.ops++
				fn(r.LSN, o)
			})
		}
		if _, ok := err.(*importMark); ok {
			// It holds no operation, and after the snapshot's cut it
			// fails checkPlan once the WAL is read.
			err = nil
		}
		if err != nil { // the WAL's record check rules this out
			return rd, fmt.Errorf("%w: WAL record %d: %v", ErrCorrupt, r.LSN, err)
		}
		rd.records++
		rd.bytes += int64(len(r.Payload))
		rd.through = r.LSN
	}
	return rd, nil
}

// mergeWAL reads the WAL records after LSN from into the loaders, up to
// mergeOpsMax operations (whole records only), and stops early once
// abandon (if not nil) is set. Folding them into the bulk load sorts them
// with the snapshot's entries instead of inserting each into a large index
// at random.
//
// The operations reach each loader in batches of sinkBatch (AddOps), in
// log order, so that the read does not fight the snapshot's decoders for
// the loaders' locks on every operation (see entrySinks).
func (s *Store) mergeWAL(loaders []*shard.Loader, tl *tripleLoad, from uint64, abandon *atomic.Bool) (walRead, error) {
	more := func(rd walRead) bool {
		return rd.ops < mergeOpsMax && (abandon == nil || !abandon.Load())
	}
	ops := newBatches(loaders, (*shard.Loader).AddOps)
	rd, err := s.readWAL(from+1, more, func(_ uint64, o op) {
		ops.add(s.shardOf(o.key), shard.Op{Kind: loadKind(o.kind), Key: o.key, Value: o.val})
	}, func(_ uint64, o TripleOp) { tl.addOp(o) })
	ops.flush()
	return rd, err
}

// loadKind maps an operation record type to the loader's.
func loadKind(kind uint8) shard.OpKind {
	switch kind {
	case opAdd:
		return shard.OpAdd
	case opRemove:
		return shard.OpRemove
	}
	return shard.OpRemoveKey // decodeOps yields no other kind
}

// loadInto returns a snapshot entry callback that adds each entry to its
// shard's loader through sinks, rejecting the reserved zero CID as
// corruption of from.
func (s *Store) loadInto(sinks *entrySinks, from string) func(cid.CID, []cid.CID) error {
	return func(k cid.CID, vals []cid.CID) error {
		if err := checkEntry(from, k, vals); err != nil {
			return err
		}
		sinks.add(k, vals)
		return nil
	}
}

// loadShards publishes the loaders into the (empty) shards in parallel;
// lsn is the last LSN they include.
func (s *Store) loadShards(loaders []*shard.Loader, lsn uint64) error {
	return maintenance.ForEach(context.Background(), len(s.shards), runtime.GOMAXPROCS(0),
		func(_ context.Context, i int) error { return s.shards[i].Load(loaders[i], lsn) })
}

// replayChunk is how many operations the WAL reader hands a replay worker
// at a time.
const replayChunk = 4096

// lsnOp is an operation with the LSN of its record.
type lsnOp struct {
	lsn uint64
	op
}

// replay applies the WAL records from LSN from on and returns what it read. One goroutine reads and
// decodes records in LSN order; operations are routed by shard to a fixed
// set of workers (shard i goes to worker i mod W), so each shard's
// operations, and therefore each key's, are applied in log order while
// different shards load in parallel. Operations are idempotent, so records
// the snapshot already holds would also be harmless.
func (s *Store) replay(from uint64) (walRead, error) {
	workers := min(runtime.GOMAXPROCS(0), len(s.shards))
	chans := make([]chan []lsnOp, workers)
	pending := make([][]lsnOp, workers)
	var wg sync.WaitGroup
	for w := range chans {
		chans[w] = make(chan []lsnOp, 4)
		wg.Add(1)
		go func(ch <-chan []lsnOp) {
			defer wg.Done()
			for chunk := range ch {
				for _, o := range chunk {
					sh := s.shards[s.shardOf(o.key)]
					sh.Lock()
					apply(sh, o.op)
					sh.SetLSN(o.lsn)
					sh.Unlock()
				}
			}
		}(chans[w])
	}
	rd, err := s.readWAL(from, nil, func(lsn uint64, o op) {
		w := s.shardOf(o.key) % workers
		if pending[w] == nil {
			pending[w] = make([]lsnOp, 0, replayChunk)
		}
		pending[w] = append(pending[w], lsnOp{lsn, o})
		if len(pending[w]) == replayChunk {
			chans[w] <- pending[w]
			pending[w] = nil
		}
	}, s.replayTriple)
	for w, ch := range chans {
		if len(pending[w]) > 0 {
			ch <- pending[w]
		}
		close(ch)
	}
	wg.Wait()
	return rd, err
}
