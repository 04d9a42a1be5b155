package store

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/shard"
)

// Pair is one (key, value) association.
type Pair struct {
	Key, Value cid.CID
}

// Store is a concurrent multi-valued map from CID to a sorted set of CIDs.
// All methods are safe for concurrent use.
type Store struct {
	opts   Options
	dir    string
	shards []*shard.Shard
	counts []opCounts // per shard, updated under the shard lock
	shift  uint       // 64 - log2(len(shards))
	seed   uint64

	closed    atomic.Bool
	closeOnce sync.Once
}

// Open opens the store in dir. An empty dir, or Options.InMemory, gives a
// pure in-memory store.
func Open(dir string, opts Options) (*Store, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if dir != "" && !o.InMemory {
		return nil, fmt.Errorf("%w: persistent stores are not available yet; use InMemory", ErrInvalidOptions)
	}
	s := &Store{
		opts:   o,
		dir:    dir,
		shards: make([]*shard.Shard, o.Shards),
		counts: make([]opCounts, o.Shards),
		shift:  uint(64 - bits.TrailingZeros(uint(o.Shards))),
		seed:   rand.Uint64(),
	}
	for i := range s.shards {
		sh, err := shard.New(shard.Options{InlineMax: o.InlineValues, Seed: rand.Uint64()})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		s.shards[i] = sh
	}
	return s, nil
}

// shardOf returns the index of k's shard. The top bits of a seeded mix of
// all 256 bits, so sequential keys spread evenly.
func (s *Store) shardOf(k cid.CID) int { return int(k.Hash(s.seed) >> s.shift) }

func (s *Store) shardFor(k cid.CID) *shard.Shard { return s.shards[s.shardOf(k)] }

// Shards returns the number of shards.
func (s *Store) Shards() int { return len(s.shards) }

// Close releases the store. It is idempotent: the first call returns nil
// and later calls return ErrClosed. After Close every write returns
// ErrClosed and reads return empty results.
func (s *Store) Close() error {
	err := ErrClosed
	s.closeOnce.Do(func() {
		// Taking every shard lock waits for writes in flight.
		for _, sh := range s.shards {
			sh.Lock()
		}
		s.closed.Store(true)
		for _, sh := range s.shards {
			sh.Unlock()
		}
		err = nil
	})
	return err
}
