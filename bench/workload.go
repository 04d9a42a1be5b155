package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Workload describes one benchmark run.
type Workload struct {
	Shards     int           // store shard count (0: the store's default)
	Goroutines int           // concurrent workers (0: 2 x GOMAXPROCS)
	Duration   time.Duration // how long to run (0: 1s)
	ReadPct    int           // percentage of operations that are reads, 0..100
	KeySpace   uint64        // distinct keys (0: 1<<20)
	Dir        string        // "" for an in-memory store
}

// Result is what a run achieved.
type Result struct {
	Workload Workload
	Ops      int64 // operations completed
	Reads    int64
	Writes   int64
	Elapsed  time.Duration
}

// OpsPerSec is the run's throughput.
func (r Result) OpsPerSec() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

func (w Workload) normalize() (Workload, error) {
	if w.Goroutines == 0 {
		w.Goroutines = 2 * runtime.GOMAXPROCS(0)
	}
	if w.Duration == 0 {
		w.Duration = time.Second
	}
	if w.KeySpace == 0 {
		w.KeySpace = 1 << 20
	}
	switch {
	case w.Goroutines < 0:
		return w, errors.New("bench: negative goroutine count")
	case w.Duration < 0:
		return w, errors.New("bench: negative duration")
	case w.ReadPct < 0 || w.ReadPct > 100:
		return w, fmt.Errorf("bench: read percentage %d outside 0..100", w.ReadPct)
	}
	return w, nil
}

// Key returns the benchmark's i-th key: random-looking, as real CIDs are.
func Key(i uint64) cid.CID {
	return cid.FromWords(splitmix(i), splitmix(i^0x9e3779b97f4a7c15), splitmix(i+7), splitmix(^i))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Run opens a store as w describes, runs the workload and closes the store.
func Run(ctx context.Context, w Workload) (Result, error) {
	w, err := w.normalize()
	if err != nil {
		return Result{}, err
	}
	s, err := store.Open(w.Dir, store.Options{Shards: w.Shards, InMemory: w.Dir == ""})
	if err != nil {
		return Result{}, err
	}
	res, runErr := run(ctx, s, w)
	if err := s.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return res, runErr
}

func run(ctx context.Context, s *store.Store, w Workload) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Duration)
	defer cancel()
	var stop atomic.Bool
	go func() { <-ctx.Done(); stop.Store(true) }()

	var reads, writes atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < w.Goroutines; g++ {
		wg.Add(1)
		go func(g uint64) {
			defer wg.Done()
			rng := splitmix(g + 1)
			buf := make([]cid.CID, 0, 16)
			var r, wr int64
			for !stop.Load() {
				rng = splitmix(rng)
				k := Key(rng % w.KeySpace)
				if int(rng>>32%100) < w.ReadPct {
					buf = s.AppendValues(buf[:0], k)
					r++
				} else {
					if err := s.Insert(k, Key(rng>>20)); err != nil {
						errOnce.Do(func() { firstErr = err })
						cancel()
						break
					}
					wr++
				}
			}
			reads.Add(r)
			writes.Add(wr)
		}(uint64(g))
	}
	wg.Wait()
	res := Result{Workload: w, Reads: reads.Load(), Writes: writes.Load(), Elapsed: time.Since(start)}
	res.Ops = res.Reads + res.Writes
	return res, firstErr
}
