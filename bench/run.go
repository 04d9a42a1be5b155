package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cidstore/cidstore/cid"
)

// Histogram bounds: latencies are recorded in nanoseconds, from 1ns to
// 100s, to three significant digits. Longer calls are recorded as 100s.
const (
	histMin    = 1
	histMax    = int64(100 * time.Second)
	histDigits = 3
)

// Result is what a run achieved.
type Result struct {
	Workload Workload // normalized
	Target   string   // Target.Name()
	Mode     string   // Workload.ModeName, or Workload.Mode() when that is empty

	Ops     int64 // calls completed (a batch insert is one call)
	Reads   int64
	Writes  int64 // Inserts + Deletes
	Inserts int64
	Deletes int64
	Pairs   int64 // pairs passed to insert calls (Inserts x BatchSize)
	Elapsed time.Duration

	// Latency of every call, in nanoseconds, merged over the goroutines.
	Latency *hdrhistogram.Histogram

	// Preload (zero unless Workload.Preload).
	PreloadPairs int64
	PreloadTime  time.Duration
	HeapPerPair  float64 // Go heap bytes per preloaded pair (after GC, before and after the load)
	RSSPerPair   float64 // process resident-set bytes per preloaded pair (Linux only; coarse)
	// From a MemoryReporter target: its own figures per preloaded pair.
	TargetUsedPerPair, TargetRSSPerPair float64
}

// OpsPerSec is the run's throughput.
func (r Result) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// NsPerOp is wall time per operation over all goroutines.
func (r Result) NsPerOp() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.Elapsed.Nanoseconds()) / float64(r.Ops)
}

// Quantile returns the latency at quantile q (0..100, e.g. 99.9).
func (r Result) Quantile(q float64) time.Duration {
	if r.Latency == nil {
		return 0
	}
	return time.Duration(r.Latency.ValueAtQuantile(q))
}

// P50, P99 and P999 are the usual latency percentiles.
func (r Result) P50() time.Duration  { return r.Quantile(50) }
func (r Result) P99() time.Duration  { return r.Quantile(99) }
func (r Result) P999() time.Duration { return r.Quantile(99.9) }

// MaxLatency is the slowest call.
func (r Result) MaxLatency() time.Duration {
	if r.Latency == nil {
		return 0
	}
	return time.Duration(r.Latency.Max())
}

// Run opens the workload's target (a CIDStore when w.Target is nil), runs
// the workload on it and closes it.
func Run(ctx context.Context, w Workload) (Result, error) {
	w, err := w.normalize()
	if err != nil {
		return Result{}, err
	}
	open := w.Target
	if open == nil {
		open = StoreTarget(w.Dir, w.StoreOptions())
	}
	t, err := open()
	if err != nil {
		return Result{}, err
	}
	res, runErr := RunTarget(ctx, t, w)
	if err := t.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return res, runErr
}

// RunTarget runs w on an open, empty target t and leaves t open: the
// preload (when w.Preload) and then the measured mix.
func RunTarget(ctx context.Context, t Target, w Workload) (Result, error) {
	w, err := w.normalize()
	if err != nil {
		return Result{}, err
	}
	res := Result{Workload: w, Target: t.Name(), Mode: w.ModeName}
	if res.Mode == "" {
		res.Mode = w.Mode()
	}
	if w.Preload {
		if err := preload(ctx, t, w, &res); err != nil {
			return res, err
		}
	}
	err = measure(ctx, t, w, &res)
	return res, err
}

// PreloadBatch is the number of pairs per InsertBatch call in the preload.
const PreloadBatch = 4096

func preload(ctx context.Context, t Target, w Workload, res *Result) error {
	heap0, rss0 := HeapInUse(), RSS()
	var used0, trss0 int64
	mr, isMR := t.(MemoryReporter)
	if isMR {
		var err error
		if used0, trss0, err = mr.Memory(); err != nil {
			return err
		}
	}
	workers := min(w.Goroutines, runtime.GOMAXPROCS(0))
	perKey := uint64(w.ValuesPerKey)
	keysPerBatch := max(1, PreloadBatch/max(perKey, 1))
	var next atomic.Uint64 // next key index to load
	errs := make(chan error, workers)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pairs := make([]Pair, 0, keysPerBatch*perKey)
			for ctx.Err() == nil {
				from := next.Add(keysPerBatch) - keysPerBatch
				if from >= w.KeySpace {
					return
				}
				pairs = pairs[:0]
				for i := from; i < min(from+keysPerBatch, w.KeySpace); i++ {
					k := Key(i)
					for j := range perKey {
						pairs = append(pairs, Pair{Key: k, Value: Value(i, j)})
					}
				}
				if err := t.InsertBatch(pairs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	res.PreloadTime = time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n := int64(w.KeySpace) * int64(perKey)
	res.PreloadPairs = n
	if n == 0 {
		return nil
	}
	res.HeapPerPair = float64(HeapInUse()-heap0) / float64(n)
	res.RSSPerPair = float64(RSS()-rss0) / float64(n)
	if isMR {
		used, trss, err := mr.Memory()
		if err != nil {
			return err
		}
		res.TargetUsedPerPair = float64(used-used0) / float64(n)
		res.TargetRSSPerPair = float64(trss-trss0) / float64(n)
	}
	return nil
}

func measure(ctx context.Context, t Target, w Workload, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop atomic.Bool
	if w.Ops == 0 {
		var tcancel context.CancelFunc
		ctx, tcancel = context.WithTimeout(ctx, w.Duration)
		defer tcancel()
	}
	watchDone := make(chan struct{})
	go func() { <-ctx.Done(); stop.Store(true); close(watchDone) }()
	defer func() { cancel(); <-watchDone }()

	type counts struct{ reads, inserts, deletes int64 }
	hists := make([]*hdrhistogram.Histogram, w.Goroutines)
	tallies := make([]counts, w.Goroutines)
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for g := range w.Goroutines {
		quota := int64(-1)
		if w.Ops > 0 {
			quota = w.Ops / int64(w.Goroutines)
			if int64(g) < w.Ops%int64(w.Goroutines) {
				quota++
			}
		}
		h := hdrhistogram.New(histMin, histMax, histDigits)
		hists[g] = h
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := &rng{s: splitmix(w.Seed*0x9e3779b97f4a7c15 + uint64(g) + 1)}
			kg := newKeyGen(w, r)
			universe := 2 * uint64(max(w.ValuesPerKey, 1))
			buf := make([]cid.CID, 0, 4*universe)
			batch := make([]Pair, w.BatchSize)
			var c counts
			var err error
			for n := int64(0); n != quota && !stop.Load(); n++ {
				pct := int(r.next() % 100)
				i := kg.next()
				k := Key(i)
				j := r.next() % universe
				switch {
				case pct < w.ReadPct:
					t0 := time.Now()
					buf, err = t.AppendValues(buf[:0], k)
					record(h, time.Since(t0))
					c.reads++
				case pct < w.ReadPct+w.DeletePct:
					v := Value(i, j)
					t0 := time.Now()
					err = t.Delete(k, v)
					record(h, time.Since(t0))
					c.deletes++
				case w.BatchSize == 1:
					v := Value(i, j)
					t0 := time.Now()
					err = t.Insert(k, v)
					record(h, time.Since(t0))
					c.inserts++
				default:
					batch[0] = Pair{Key: k, Value: Value(i, j)}
					for b := 1; b < len(batch); b++ {
						i := kg.next()
						batch[b] = Pair{Key: Key(i), Value: Value(i, r.next()%universe)}
					}
					t0 := time.Now()
					err = t.InsertBatch(batch)
					record(h, time.Since(t0))
					c.inserts++
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					cancel()
					break
				}
			}
			tallies[g] = c
		}(g)
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Latency = hdrhistogram.New(histMin, histMax, histDigits)
	for g, h := range hists {
		res.Latency.Merge(h)
		res.Reads += tallies[g].reads
		res.Inserts += tallies[g].inserts
		res.Deletes += tallies[g].deletes
	}
	res.Writes = res.Inserts + res.Deletes
	res.Ops = res.Reads + res.Writes
	res.Pairs = res.Inserts * int64(w.BatchSize)
	if firstErr == nil && w.Ops > 0 {
		firstErr = context.Cause(ctx) // cancelled from outside before the quota
		if res.Ops == w.Ops {
			firstErr = nil
		}
	}
	return firstErr
}

func record(h *hdrhistogram.Histogram, d time.Duration) {
	h.RecordValue(min(max(int64(d), histMin), histMax))
}

// HeapInUse runs a garbage collection and returns the live heap bytes.
func HeapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// RSS returns this process's resident set size in bytes, or 0 where
// /proc/self/status is not available.
func RSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
