package store

import (
	"runtime/debug"
	"sync"
)

// The bulk phase of recovery (snapshot decode, the WAL merged into it and
// the build of the shards) allocates almost nothing but the data it
// keeps, yet with the collector on it pays for marking that live heap
// again and again as it doubles, for write barriers while a cycle runs,
// and for assists. pauseGC switches the collector off (GOGC=off) for that
// phase; a memory limit (GOMEMLIMIT, debug.SetMemoryLimit) still triggers
// collections. The garbage the phase leaves (mostly the loaders' entry
// arrays; the shard build reuses its scratch from shard to shard) waits
// until the collector is back on, so peak RSS grows by that much: about 6%
// at 10M pairs (BENCHMARKS.md, recovery).
//
// The setting is process-wide: pauses nest across stores opening at once,
// and the last one to resume restores the percentage the first one found.
// A call to debug.SetGCPercent by the program while a recovery runs is
// overridden when it ends.
var gcPause struct {
	mu    sync.Mutex
	depth int
	saved int // the GC percentage before the outermost pause
}

// pauseGC switches the garbage collector off until the returned resume
// function is called (once).
func pauseGC() (resume func()) {
	gcPause.mu.Lock()
	if gcPause.depth == 0 {
		gcPause.saved = debug.SetGCPercent(-1)
	}
	gcPause.depth++
	gcPause.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			gcPause.mu.Lock()
			defer gcPause.mu.Unlock()
			if gcPause.depth--; gcPause.depth == 0 {
				debug.SetGCPercent(gcPause.saved)
			}
		})
	}
}
