package store

import (
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"

	"github.com/cidstore/cidstore/shard"
)

// MaxShards is the largest shard count Options accept.
const MaxShards = 1 << 16

// Options configure Open. The zero value is a valid configuration.
type Options struct {
	// Shards is the number of shards. 0 picks DefaultShards(). Any other
	// value is rounded up to the next power of two (so 3 becomes 4);
	// valid range 0..MaxShards.
	Shards int

	// InMemory keeps everything in memory and writes nothing to disk. A
	// store opened with an empty directory is always in memory.
	InMemory bool

	// InlineValues is the largest value set kept as a sorted inline slice;
	// larger sets use a copy-on-write B-tree. 0 means the default (32);
	// valid range 1..4096.
	InlineValues int

	// Logger receives operational messages. nil discards them.
	Logger *slog.Logger
}

// DefaultShards returns the shard count used when Options.Shards is 0:
// four shards per GOMAXPROCS, rounded up to a power of two. More shards
// than cores keep writers on different keys from queueing on one shard
// lock; the shard-count benchmark (cidstore bench) shows the trade-off.
func DefaultShards() int { return ceilPow2(4 * runtime.GOMAXPROCS(0)) }

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// normalize validates o and fills in defaults.
func (o Options) normalize() (Options, error) {
	switch {
	case o.Shards < 0 || o.Shards > MaxShards:
		return o, fmt.Errorf("%w: Shards %d outside 0..%d", ErrInvalidOptions, o.Shards, MaxShards)
	case o.InlineValues < 0 || o.InlineValues > shard.MaxInlineMax:
		return o, fmt.Errorf("%w: InlineValues %d outside 0..%d", ErrInvalidOptions, o.InlineValues, shard.MaxInlineMax)
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards()
	}
	o.Shards = ceilPow2(o.Shards)
	if o.InlineValues == 0 {
		o.InlineValues = shard.DefaultInlineMax
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
