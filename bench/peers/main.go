// Command peers runs the bench workloads against CIDStore, its in-process
// baselines and peer databases, and prints comparison tables:
//
//   - throughput and latency for every (target, durability mode, mix):
//     CIDStore (memory, SyncAlways), xsync.MapOf and sync.Map baselines,
//     BuntDB (memory, fsync always), Pebble (no sync, sync), Badger
//     (memory, no sync, SyncWrites) and Redis over loopback;
//   - memory per pair for the same data set: CIDStore's and the
//     baselines' Go heap and RSS (each measured in a fresh child process)
//     against Redis's INFO used_memory and RSS;
//   - restart-load time: CIDStore's Open from a snapshot and from WAL
//     replay against Redis's RDB load (SAVE, restart, until it answers).
//
// Redis parts run only when redis-server is installed (or -redis-server
// names it). It lives in its own module so that the peers' dependencies
// stay out of the library's go.mod:
//
//	cd bench/peers && go run . -duration 2s -keys 262144
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cidstore/cidstore/bench"
	"github.com/cidstore/cidstore/store"
	"github.com/tidwall/buntdb"
)

// spec is one target in one durability mode.
type spec struct {
	peer, mode string
	open       func(dir string) bench.Opener // dir: a fresh directory for durable modes
}

var allPeers = []string{"cidstore", "xsync", "syncmap", "buntdb", "pebble", "badger", "redis"}

func specs(redisSrv *redisServer, poolSize int) []spec {
	cidstore := func(sync store.SyncMode) func(string) bench.Opener {
		return func(dir string) bench.Opener {
			return bench.StoreTarget(dir, bench.Workload{Sync: sync}.StoreOptions())
		}
	}
	return []spec{
		{"cidstore", "memory", func(string) bench.Opener { return bench.StoreTarget("", store.Options{}) }},
		{"cidstore", "always", cidstore(store.SyncAlways)},
		{"xsync", "memory", func(string) bench.Opener { return bench.XSyncTarget() }},
		{"syncmap", "memory", func(string) bench.Opener { return bench.SyncMapTarget() }},
		{"buntdb", "memory", func(string) bench.Opener { return buntOpener("", buntdb.Never) }},
		{"buntdb", "always", func(dir string) bench.Opener { return buntOpener(dir, buntdb.Always) }},
		{"pebble", "nosync", func(dir string) bench.Opener { return pebbleOpener(dir, false) }},
		{"pebble", "sync", func(dir string) bench.Opener { return pebbleOpener(dir, true) }},
		{"badger", "memory", func(string) bench.Opener { return badgerOpener("", false) }},
		{"badger", "nosync", func(dir string) bench.Opener { return badgerOpener(dir, false) }},
		{"badger", "sync", func(dir string) bench.Opener { return badgerOpener(dir, true) }},
		{"redis", "memory", func(string) bench.Opener {
			if redisSrv == nil {
				return nil
			}
			return redisOpener(redisSrv, poolSize)
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	peers := fs.String("peers", strings.Join(allPeers, ","), "comma-separated targets")
	modes := fs.String("modes", "", "comma-separated durability modes to keep (memory, always, sync, nosync; default all)")
	mixes := fs.String("workloads", "read-heavy,mixed,write-heavy", "comma-separated workloads")
	w := bench.Workload{Preload: true}
	fs.DurationVar(&w.Duration, "duration", time.Second, "run time per point")
	workloadParsed := w.AddFlags(fs)
	format := fs.String("format", "table", "throughput output: table or gobench")
	csvPath := fs.String("csv", "", "also write the throughput results to this CSV file")
	doMem := fs.Bool("memory", true, "measure memory per pair (CIDStore and baselines in child processes, Redis via INFO)")
	doRestart := fs.Bool("restart", true, "measure restart-load time (CIDStore Open vs Redis RDB load)")
	redisBin := fs.String("redis-server", "", "redis-server binary (default: from PATH; Redis parts are skipped without one)")
	tmpParent := fs.String("tmp", "", "parent of the temporary directory (default the system temp dir)")
	child := fs.String("child-memory", "", "internal: measure one target's memory per pair and print it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := workloadParsed(); err != nil {
		return err
	}
	if *child != "" {
		return childMemory(*child, w, stdout)
	}
	ms, err := bench.ParseMixes(*mixes)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, p := range strings.Split(*peers, ",") {
		p = strings.TrimSpace(p)
		if !contains(allPeers, p) {
			return fmt.Errorf("unknown peer %q (want some of %s)", p, strings.Join(allPeers, ","))
		}
		want[p] = true
	}
	wantMode := map[string]bool{}
	if *modes != "" {
		for _, m := range strings.Split(*modes, ",") {
			wantMode[strings.TrimSpace(m)] = true
		}
	}
	if *format != "table" && *format != "gobench" {
		return fmt.Errorf("-format %q: want table or gobench", *format)
	}

	tmp, err := os.MkdirTemp(*tmpParent, "cidstore-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var srv *redisServer
	if want["redis"] {
		bin, err := redisBinary(*redisBin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "peers: redis-server not found; skipping Redis (install it, e.g. apt-get install redis-server, or pass -redis-server)")
			delete(want, "redis")
		} else {
			dir := filepath.Join(tmp, "redis")
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			if srv, err = startRedis(ctx, bin, dir); err != nil {
				return fmt.Errorf("starting redis-server: %w", err)
			}
			defer srv.stop()
		}
	}

	fmt.Fprintf(stdout, "%v per point, %d goroutines, %d keys x %d values preloaded, %s keys, batch %d, GOMAXPROCS=%d\n\n",
		w.Duration, w.Goroutines, w.KeySpace, w.ValuesPerKey, w.Dist, w.BatchSize, runtime.GOMAXPROCS(0))

	// Throughput and latency.
	var results []bench.Result
	for i, s := range specs(srv, w.Goroutines) {
		if !want[s.peer] || len(wantMode) > 0 && !wantMode[s.mode] || ctx.Err() != nil {
			continue
		}
		dir := filepath.Join(tmp, fmt.Sprintf("%02d-%s-%s", i, s.peer, s.mode))
		sw := w
		sw.ModeName = s.mode
		fmt.Fprintf(os.Stderr, "peers: %s %s\n", s.peer, s.mode)
		rs, err := bench.RunMixes(ctx, s.open(dir), sw, ms, nil)
		os.RemoveAll(dir)
		results = append(results, rs...)
		if err != nil {
			return fmt.Errorf("%s %s: %w", s.peer, s.mode, err)
		}
	}
	if *format == "gobench" {
		bench.WriteGoBenchHeader(stdout, "github.com/cidstore/cidstore/bench/peers", "")
		if err := bench.WriteGoBench(stdout, results); err != nil {
			return err
		}
	} else {
		printResults(stdout, results)
	}
	if *csvPath != "" {
		if err := writeCSV(*csvPath, results); err != nil {
			return err
		}
	}

	if *doMem && ctx.Err() == nil {
		if err := memoryTable(ctx, stdout, w, want, srv, *redisBin, tmp); err != nil {
			return err
		}
	}
	if *doRestart && ctx.Err() == nil && want["cidstore"] {
		if err := restartTable(ctx, stdout, w, srv, tmp); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func printResults(stdout io.Writer, results []bench.Result) {
	fmt.Fprintln(stdout, "throughput and latency")
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmode\tworkload\tops/s\tp50 µs\tp99 µs\tp99.9 µs\tpreload s\theap B/pair\t")
	for _, r := range results {
		heap := fmt.Sprintf("%.0f", r.HeapPerPair)
		if r.HeapPerPair < 0 {
			heap = "n/a" // the target's memory is mostly off the Go heap and shrank meanwhile
		}
		if r.TargetUsedPerPair != 0 {
			heap = fmt.Sprintf("(server) %.0f", r.TargetUsedPerPair)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", r.Target, r.Mode, r.Workload.Name,
			r.OpsPerSec(), us(r.P50()), us(r.P99()), us(r.P999()), r.PreloadTime.Seconds(), heap)
	}
	tw.Flush()
	fmt.Fprintln(stdout)
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

func writeCSV(path string, results []bench.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = bench.WriteCSV(bw, results)
	if err == nil {
		err = bw.Flush()
	}
	return errors.Join(err, f.Close())
}

// childMemory runs in a fresh child process: it preloads the data set
// into one in-process target and prints "pairs heap-per-pair rss-per-pair".
func childMemory(target string, w bench.Workload, stdout io.Writer) error {
	var open bench.Opener
	switch target {
	case "cidstore":
		open = bench.StoreTarget("", store.Options{})
	case "xsync":
		open = bench.XSyncTarget()
	case "syncmap":
		open = bench.SyncMapTarget()
	default:
		return fmt.Errorf("-child-memory %q: want cidstore, xsync or syncmap", target)
	}
	t, err := open()
	if err != nil {
		return err
	}
	w.Ops, w.ReadPct = 1, 100
	res, err := bench.RunTarget(context.Background(), t, w)
	if err != nil {
		return errors.Join(err, t.Close())
	}
	runtime.KeepAlive(t)
	fmt.Fprintf(stdout, "%d %.1f %.1f\n", res.PreloadPairs, res.HeapPerPair, res.RSSPerPair)
	return t.Close()
}

func memoryTable(ctx context.Context, stdout io.Writer, w bench.Workload, want map[string]bool, srv *redisServer, redisBin, tmp string) error {
	fmt.Fprintf(stdout, "memory per pair (%d keys x %d values)\n", w.KeySpace, w.ValuesPerKey)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmeasure\tbytes/pair\trss bytes/pair\t")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, name := range []string{"cidstore", "xsync", "syncmap"} {
		if !want[name] {
			continue
		}
		cmd := exec.CommandContext(ctx, self, "-child-memory", name, "-keys", strconv.FormatUint(w.KeySpace, 10),
			"-values", strconv.Itoa(w.ValuesPerKey), "-goroutines", strconv.Itoa(w.Goroutines))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("memory of %s: %w", name, err)
		}
		var pairs int64
		var heap, rss float64
		if _, err := fmt.Sscan(string(out), &pairs, &heap, &rss); err != nil {
			return fmt.Errorf("memory of %s: %q: %w", name, out, err)
		}
		fmt.Fprintf(tw, "%s\tGo heap (RSS) in a fresh process\t%.1f\t%.1f\t\n", name, heap, rss)
	}
	if srv != nil {
		// A fresh server, so that its RSS has not been inflated by the runs.
		bin, _ := redisBinary(redisBin)
		dir := filepath.Join(tmp, "redis-mem")
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		fresh, err := startRedis(ctx, bin, dir)
		if err != nil {
			return err
		}
		defer fresh.stop()
		mw := w
		mw.Ops, mw.ReadPct, mw.DeletePct = 1, 100, 0
		res, err := bench.Run(ctx, func() bench.Workload { mw.Target = redisOpener(fresh, w.Goroutines); return mw }())
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "redis\tINFO used_memory (used_memory_rss), one set per key\t%.1f\t%.1f\t\n", res.TargetUsedPerPair, res.TargetRSSPerPair)
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	return nil
}

// restartTable measures how long a restart takes to get the data set back:
// CIDStore's Open from a snapshot and from WAL replay alone, and Redis's
// start with the RDB file that SAVE wrote.
func restartTable(ctx context.Context, stdout io.Writer, w bench.Workload, srv *redisServer, tmp string) error {
	fmt.Fprintf(stdout, "restart-load time (%d keys x %d values)\n", w.KeySpace, w.ValuesPerKey)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tfrom\tfiles MB\tload s\t")
	lw := w
	lw.Ops, lw.ReadPct, lw.DeletePct = 1, 100, 0
	for _, checkpoint := range []bool{true, false} {
		dir := filepath.Join(tmp, "restart-cidstore")
		cfg := store.DefaultConfig()
		cfg.Sync = store.SyncNever
		cfg.CheckpointWALBytes, cfg.CheckpointInterval = 0, 0 // only the explicit checkpoint
		opts := store.Options{Config: &cfg}
		s, err := store.Open(dir, opts)
		if err != nil {
			return err
		}
		if _, err := bench.RunTarget(ctx, &bench.StoreAdapter{S: s}, lw); err != nil {
			return errors.Join(err, s.Close())
		}
		from := "WAL replay"
		if checkpoint {
			from = "snapshot"
			if err := s.Checkpoint(ctx); err != nil {
				return errors.Join(err, s.Close())
			}
		}
		if err := s.Close(); err != nil {
			return err
		}
		size := dirSize(dir)
		start := time.Now()
		s, err = store.Open(dir, opts)
		took := time.Since(start)
		if err != nil {
			return err
		}
		if s.Pairs() != int(lw.KeySpace)*lw.ValuesPerKey {
			return errors.Join(fmt.Errorf("reopened store has %d pairs, want %d", s.Pairs(), int(lw.KeySpace)*lw.ValuesPerKey), s.Close())
		}
		if err := errors.Join(s.Close(), os.RemoveAll(dir)); err != nil {
			return err
		}
		fmt.Fprintf(tw, "CIDStore\t%s\t%.1f\t%.3f\t\n", from, float64(size)/1e6, took.Seconds())
	}
	if srv != nil {
		t, err := redisOpener(srv, w.Goroutines)()
		if err != nil {
			return err
		}
		_, err = bench.RunTarget(ctx, t, lw)
		if err := errors.Join(err, t.Close()); err != nil {
			return err
		}
		took, err := srv.restart(ctx)
		if err != nil {
			return err
		}
		from := "RDB"
		if srv.loadLine != "" {
			from += " (" + srv.loadLine + ")"
		}
		fmt.Fprintf(tw, "Redis\t%s\t%.1f\t%.3f\t\n", from, float64(dirSize(srv.dir))/1e6, took.Seconds())
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
