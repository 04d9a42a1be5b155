package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/cidstore/cidstore/bench"
	"github.com/cidstore/cidstore/cid"
	"github.com/cockroachdb/pebble"
	"github.com/dgraph-io/badger/v4"
	"github.com/tidwall/buntdb"
)

// The ordered key/value peers model the multi-valued map as one entry per
// pair: the 64-byte composite key key||value with an empty value, and Get
// as a prefix scan over key.

func composite(k, v cid.CID) []byte {
	b := make([]byte, 2*cid.Size)
	copy(b, k[:])
	copy(b[cid.Size:], v[:])
	return b
}

// appendValue appends the value half of a composite key to dst.
func appendValue(dst []cid.CID, kv []byte) ([]cid.CID, error) {
	if len(kv) != 2*cid.Size {
		return dst, fmt.Errorf("composite key of %d bytes", len(kv))
	}
	return append(dst, cid.CID(kv[cid.Size:])), nil
}

// prefixEnd is the smallest key after every key that starts with k.
func prefixEnd(k cid.CID) []byte {
	end := k
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:]
		}
	}
	return nil // k is all 0xff: no upper bound
}

// ---- BuntDB ----

type buntTarget struct {
	db   *buntdb.DB
	name string
	dir  string
}

// buntOpener opens BuntDB in memory (dir == "") or on a file in dir with
// the given sync policy.
func buntOpener(dir string, policy buntdb.SyncPolicy) bench.Opener {
	return func() (bench.Target, error) {
		path := ":memory:"
		if dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			path = dir + "/bunt.db"
		}
		db, err := buntdb.Open(path)
		if err != nil {
			return nil, err
		}
		var cfg buntdb.Config
		if err := db.ReadConfig(&cfg); err != nil {
			return nil, errors.Join(err, db.Close())
		}
		cfg.SyncPolicy = policy
		cfg.AutoShrinkDisabled = true // keep the log from being rewritten mid-run
		if err := db.SetConfig(cfg); err != nil {
			return nil, errors.Join(err, db.Close())
		}
		return &buntTarget{db: db, name: "BuntDB", dir: dir}, nil
	}
}

func (t *buntTarget) Name() string { return t.name }

func (t *buntTarget) AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error) {
	var ierr error
	err := t.db.View(func(tx *buntdb.Tx) error {
		from := string(k[:])
		end := string(prefixEnd(k))
		return tx.AscendRange("", from, end, func(key, _ string) bool {
			dst, ierr = appendValue(dst, []byte(key))
			return ierr == nil
		})
	})
	return dst, errors.Join(err, ierr)
}

func (t *buntTarget) Insert(k, v cid.CID) error {
	return t.db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(string(composite(k, v)), "", nil)
		return err
	})
}

func (t *buntTarget) InsertBatch(pairs []bench.Pair) error {
	return t.db.Update(func(tx *buntdb.Tx) error {
		for _, p := range pairs {
			if _, _, err := tx.Set(string(composite(p.Key, p.Value)), "", nil); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *buntTarget) Delete(k, v cid.CID) error {
	return t.db.Update(func(tx *buntdb.Tx) error {
		_, err := tx.Delete(string(composite(k, v)))
		if errors.Is(err, buntdb.ErrNotFound) {
			return nil
		}
		return err
	})
}

func (t *buntTarget) Close() error {
	err := t.db.Close()
	if t.dir != "" {
		err = errors.Join(err, os.RemoveAll(t.dir))
	}
	return err
}

// ---- Pebble ----

type pebbleTarget struct {
	db   *pebble.DB
	wo   *pebble.WriteOptions
	name string
	dir  string
}

// pebbleOpener opens Pebble on dir, syncing every write or none.
func pebbleOpener(dir string, sync bool) bench.Opener {
	return func() (bench.Target, error) {
		db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
		if err != nil {
			return nil, err
		}
		wo := pebble.NoSync
		if sync {
			wo = pebble.Sync
		}
		return &pebbleTarget{db: db, wo: wo, name: "Pebble", dir: dir}, nil
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}

func (t *pebbleTarget) Name() string { return t.name }

func (t *pebbleTarget) AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error) {
	it, err := t.db.NewIter(&pebble.IterOptions{LowerBound: k[:], UpperBound: prefixEnd(k)})
	if err != nil {
		return dst, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if dst, err = appendValue(dst, it.Key()); err != nil {
			break
		}
	}
	return dst, errors.Join(err, it.Close())
}

func (t *pebbleTarget) Insert(k, v cid.CID) error { return t.db.Set(composite(k, v), nil, t.wo) }

func (t *pebbleTarget) InsertBatch(pairs []bench.Pair) error {
	b := t.db.NewBatch()
	for _, p := range pairs {
		if err := b.Set(composite(p.Key, p.Value), nil, nil); err != nil {
			return errors.Join(err, b.Close())
		}
	}
	return b.Commit(t.wo)
}

func (t *pebbleTarget) Delete(k, v cid.CID) error { return t.db.Delete(composite(k, v), t.wo) }

func (t *pebbleTarget) Close() error {
	return errors.Join(t.db.Close(), os.RemoveAll(t.dir))
}

// ---- Badger ----

type badgerTarget struct {
	db   *badger.DB
	name string
	dir  string
}

// badgerOpener opens Badger in memory (dir == "") or on dir, with or
// without SyncWrites.
func badgerOpener(dir string, sync bool) bench.Opener {
	return func() (bench.Target, error) {
		opts := badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(sync).
			WithMemTableSize(16 << 20).WithBlockCacheSize(32 << 20).WithNumCompactors(2)
		if dir == "" {
			opts = opts.WithInMemory(true)
		}
		db, err := badger.Open(opts)
		if err != nil {
			return nil, err
		}
		return &badgerTarget{db: db, name: "Badger", dir: dir}, nil
	}
}

func (t *badgerTarget) Name() string { return t.name }

func (t *badgerTarget) AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error) {
	var ierr error
	err := t.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: k[:]})
		defer it.Close()
		for it.Seek(k[:]); it.ValidForPrefix(k[:]); it.Next() {
			if dst, ierr = appendValue(dst, it.Item().Key()); ierr != nil {
				return ierr
			}
		}
		return nil
	})
	return dst, err
}

func (t *badgerTarget) Insert(k, v cid.CID) error {
	return t.db.Update(func(txn *badger.Txn) error { return txn.Set(composite(k, v), nil) })
}

func (t *badgerTarget) InsertBatch(pairs []bench.Pair) error {
	wb := t.db.NewWriteBatch()
	defer wb.Cancel()
	for _, p := range pairs {
		if err := wb.Set(composite(p.Key, p.Value), nil); err != nil {
			return err
		}
	}
	return wb.Flush()
}

func (t *badgerTarget) Delete(k, v cid.CID) error {
	return t.db.Update(func(txn *badger.Txn) error { return txn.Delete(composite(k, v)) })
}

func (t *badgerTarget) Close() error {
	err := t.db.Close()
	if t.dir != "" {
		err = errors.Join(err, os.RemoveAll(t.dir))
	}
	return err
}
