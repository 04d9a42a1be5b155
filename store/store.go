package store

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/shard"
	"github.com/cidstore/cidstore/triples"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// Store is a concurrent multi-valued map from CID to a sorted set of CIDs.
// All methods are safe for concurrent use.
type Store struct {
	// What Open was given (options.go); dir is "" in memory.
	opts Options
	dir  string

	// The pair shards: read.go reads them, write.go and batch.go write
	// them under their locks, and a cut (iter.go) locks them all.
	shards  []*shard.Shard
	counts  []opCounts   // per shard, updated under the shard lock
	queues  []shardQueue // per shard: batch shares logged, not yet applied (publish.go)
	batches sync.Pool    // *batch scratch space (publish.go)
	shift   uint         // 64 - log2(len(shards))
	seed    uint64

	// The triple indexes (triple.go).
	triples *triples.Set
	tcounts tripleCounts

	// The write-ahead log and the directory, set by Open and recovery;
	// failed is the sticky write failure (write.go).
	wal      *wal.Log  // nil for an in-memory store
	walIn    *walInput // the WAL as recovery reads it; nil after Open
	lock     io.Closer // directory lock; nil in memory
	failed   atomic.Pointer[error]
	recovery RecoveryStats
	walCheck walCheck // the WAL's record check

	// The live configuration (config.go) and the background workers
	// (maintain.go).
	cfg   *maintenance.Holder[Config]
	cfgMu sync.Mutex // orders applyConfig
	sched *maintenance.Scheduler[Config]
	maint maintStats

	ckpt checkpointer // checkpoint.go

	// Close (store.go): after it, writes fail and reads are empty.
	closed    atomic.Bool
	closeOnce sync.Once

	cutHook func() // tests: called by cut with every shard locked
}

// Open opens the store in dir, creating the directory (mode 0700) if
// needed, and recovers its contents from the write-ahead log. An empty dir,
// or Options.InMemory, gives a pure in-memory store that writes nothing.
//
// Open fails with an error wrapping ErrLocked if another Store has dir
// open, and with one wrapping ErrCorrupt (naming file and offset) if the
// log is damaged other than by a torn final write, unless Options.Repair
// is set.
func Open(dir string, opts Options) (*Store, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	holder, err := maintenance.NewHolder(o.initialConfig(), Config.Validate)
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:    holder,
		opts:   o,
		dir:    dir,
		shards: make([]*shard.Shard, o.Shards),
		counts: make([]opCounts, o.Shards),
		queues: make([]shardQueue, o.Shards),
		shift:  uint(64 - bits.TrailingZeros(uint(o.Shards))),
		seed:   rand.Uint64(),
	}
	for i := range s.shards {
		// Every shard hashes with the store's seed: a read picks the
		// shard from the top bits of the hash its shard's map is keyed
		// by, and so hashes the key once.
		sh, err := shard.New(shard.Options{InlineMax: holder.Load().InlineValues, Seed: s.seed})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		s.shards[i] = sh
	}
	if s.triples, err = newTriples(o.Shards, holder.Load().InlineValues, rand.Uint64()); err != nil {
		return nil, err
	}
	if o.ReadOnly && dir == "" {
		return nil, fmt.Errorf("%w: ReadOnly needs a directory", ErrInvalidOptions)
	}
	if dir != "" && !o.InMemory {
		if err := s.openDisk(); err != nil {
			return nil, fmt.Errorf("cidstore: open %s: %w", dir, asCorrupt(err))
		}
	}
	s.ckpt.lastAt.Store(time.Now().UnixNano())
	if err := s.startMaintenance(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// openDisk locks the directory, opens the WAL and recovers: the newest
// valid snapshot, then the WAL records after its cut.
func (s *Store) openDisk() error {
	fs := s.opts.FS
	if s.opts.ReadOnly {
		return s.openReadOnly()
	}
	created, err := missingAncestor(fs, s.dir)
	if err != nil {
		return err
	}
	if err := s.openDiskIn(fs); err != nil {
		if created != "" {
			// Open made the directory: leave nothing behind.
			err = errors.Join(err, removeTree(fs, created))
		}
		return err
	}
	return nil
}

func (s *Store) openDiskIn(fs vfs.FS) error {
	if err := notAStoreInside(fs, s.dir); err != nil {
		return err
	}
	if err := fs.MkdirAll(filepath.Join(s.dir, snapDir), 0o700); err != nil {
		return err
	}
	lock, err := fs.Lock(filepath.Join(s.dir, lockName))
	if err != nil {
		return err
	}
	var repaired RepairReport
	if s.opts.Repair && isStore(fs, s.dir) == nil { // else there is nothing to repair
		if repaired, err = repairDir(fs, s.dir, s.opts.Logger); err != nil {
			return errors.Join(err, lock.Close())
		}
	}
	removeOldWALLock(fs, s.dir, s.opts.Logger)
	c := s.cfg.Load()
	// The store's lock covers the WAL directory: the WAL takes none.
	rc, err := wal.Recover(wal.Options{
		FS:            fs,
		Dir:           filepath.Join(s.dir, walDir),
		SegmentSize:   s.opts.SegmentSize,
		NoPreallocate: s.opts.NoPreallocate,
		NoLock:        true,
		Sync:          c.Sync,
		SyncInterval:  c.SyncInterval,
		CheckRecord:   s.walCheck.check,
		Logger:        s.opts.Logger,
	})
	if err != nil {
		if errors.Is(err, wal.ErrInvalidOptions) {
			err = fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		return errors.Join(err, lock.Close())
	}
	s.lock = lock
	if err := s.recover(rc); err != nil {
		return errors.Join(err, rc.Close(), s.closeWAL(), lock.Close())
	}
	if repaired.Changed() {
		s.recovery.Repair = &repaired
	}
	s.recovery.TornBytes = max(s.recovery.TornBytes, repaired.WAL.TornBytes)
	return nil
}

// openReadOnly opens the store directory as Options.ReadOnly says.
func (s *Store) openReadOnly() error {
	fs := s.opts.FS
	if err := isStore(fs, s.dir); err != nil {
		return err
	}
	lock, err := lockIfWritable(fs, filepath.Join(s.dir, lockName))
	if err != nil {
		return err
	}
	c := s.cfg.Load()
	rc, err := wal.Recover(wal.Options{
		FS:          fs,
		Dir:         filepath.Join(s.dir, walDir),
		ReadOnly:    true,
		SegmentSize: s.opts.SegmentSize,
		Sync:        c.Sync,
		CheckRecord: s.walCheck.check,
		Logger:      s.opts.Logger,
	})
	if err != nil {
		return errors.Join(err, lock.Close())
	}
	s.lock = lock
	if err := s.recover(rc); err != nil {
		return errors.Join(err, rc.Close(), s.closeWAL(), lock.Close())
	}
	ro := fmt.Errorf("%w: opened with Options.ReadOnly", ErrReadOnly)
	s.failed.Store(&ro)
	return nil
}

// closeWAL closes the WAL recovery opened, if it got that far, for an
// Open that fails.
func (s *Store) closeWAL() error {
	if s.wal == nil {
		return nil
	}
	err := s.wal.Close()
	s.wal = nil
	return err
}

// missingAncestor returns the outermost of dir and its parents that does
// not exist ("" if dir exists): what creating dir creates.
func missingAncestor(fs vfs.FS, dir string) (string, error) {
	missing := ""
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		_, err := fs.Stat(d)
		if err == nil {
			return missing, nil
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return "", err
		}
		missing = d
		if filepath.Dir(d) == d {
			return missing, nil
		}
	}
}

// removeTree removes the directory path and everything in it.
func removeTree(fs vfs.FS, path string) error {
	ents, err := fs.ReadDir(path)
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(path, e.Name())
		if e.IsDir() {
			err = removeTree(fs, p)
		} else {
			err = fs.Remove(p)
		}
		if err != nil {
			return err
		}
	}
	if err := fs.Remove(path); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	return nil
}

// shardOf returns the index of k's shard: the top bits of k.Hash(s.seed),
// a seeded mix of all 256 bits, so sequential keys spread evenly. Every
// shard keys its map by that same hash (see lookup).
func (s *Store) shardOf(k cid.CID) int { return int(k.Hash(s.seed) >> s.shift) }

// Shards returns the number of shards.
func (s *Store) Shards() int { return len(s.shards) }

// Persistent reports whether the store keeps its data on disk, with a
// write-ahead log, rather than only in memory. It says nothing of the sync
// policy: a persistent store under SyncNever is persistent too.
func (s *Store) Persistent() bool { return s.wal != nil }

// Close waits for writes in flight and for a Checkpoint or Import in
// progress, flushes and fsyncs the write-ahead log and releases the
// directory. It is idempotent: the first call returns nil
// (or the error from the final flush) and later calls return ErrClosed.
// After Close every write returns ErrClosed and reads return empty results.
func (s *Store) Close() error {
	err := ErrClosed
	s.closeOnce.Do(func() {
		// Stop the workers first: a checkpoint in progress is cancelled.
		if s.sched != nil {
			s.sched.Close()
		}
		// Taking every shard lock waits for publications in flight.
		unlock := s.lockAll() // pair and triple shards
		s.closed.Store(true)
		unlock()
		// A Checkpoint or Import a caller started is past its cut; let it
		// finish while the WAL and the directory lock are still held.
		s.ckpt.mu.Lock()
		defer s.ckpt.mu.Unlock()
		err = nil
		if s.wal != nil {
			err = errors.Join(s.wal.Close(), s.lock.Close())
		}
	})
	return err
}
