package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cidstore/cidstore/bench"
	"github.com/cidstore/cidstore/store"
	"github.com/schollz/progressbar/v3"
)

// defaultBenchOut names the default output directory; "-" writes no files.
// Tests replace it so that a run without -out leaves nothing behind.
var defaultBenchOut = func() string {
	return filepath.Join("bench-out", time.Now().Format("20060102-150405"))
}

// benchBudget is the total measuring time the sweep spreads over its
// points when -duration is not given: with preloads, GCs and store
// open/close on top, the default sweep takes about a minute on two cores.
const benchBudget = 40 * time.Second

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench", stdout)
	workloads := fs.String("workloads", "read-heavy,mixed,write-heavy", "comma-separated workloads: read-heavy (90% reads), mixed (50%), write-heavy (10%); writes are half inserts, half deletes")
	shards := fs.String("shards", "1,2,4,8,16,32,64,128,256", "comma-separated shard counts to compare")
	data := fs.String("data", "pairs", "data model: pairs (Get/Insert/Delete of key-value pairs) or triples (key k, value v as the triple (k, one of 16 predicates, v): reads are S?? queries, writes InsertTriple(s)/DeleteTriple)")
	modes := fs.String("mode", "both", "durability: memory, always (a store in a temporary directory with SyncAlways), or both")
	w := bench.Workload{}
	fs.DurationVar(&w.Duration, "duration", 0, "run time per point (0: share a "+benchBudget.String()+" budget over all points)")
	workloadParsed := w.AddFlags(fs)
	reads := fs.Int("reads", -1, "custom workload: percentage of reads (replaces -workloads)")
	deletes := fs.Int("deletes", -1, "custom workload: percentage of deletes (default: half of the writes)")
	baselines := fs.Bool("baselines", false, "also run each workload on a raw xsync.MapOf and a sync.Map (in memory)")
	out := fs.String("out", "", "output directory for results.csv and the PNG charts (default ./bench-out/<timestamp>; - for none)")
	format := fs.String("format", "table", "stdout format: table, or gobench (Go benchmark lines for benchstat)")
	tmpParent := fs.String("tmp", "", "parent of the temporary store directory (default the system temp dir)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	counts, err := parseInts(*shards)
	if err != nil {
		return err
	}
	if err := workloadParsed(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	presets, err := parsePresets(*workloads, *reads, *deletes)
	if err != nil {
		return err
	}
	var durable []bool
	switch *modes {
	case "memory":
		durable = []bool{false}
	case "always":
		durable = []bool{true}
	case "both":
		durable = []bool{false, true}
	default:
		return fmt.Errorf("%w: -mode %q: want memory, always or both", errUsage, *modes)
	}
	if *data != "pairs" && *data != "triples" {
		return fmt.Errorf("%w: -data %q: want pairs or triples", errUsage, *data)
	}
	if *format != "table" && *format != "gobench" {
		return fmt.Errorf("%w: -format %q: want table or gobench", errUsage, *format)
	}
	w.Preload = true
	w.Sync = store.SyncAlways

	// The plan: for every mode and shard count (then each baseline) one
	// store, preloaded once, that runs every workload in turn. Balanced
	// inserts and deletes keep the data set near its preloaded size, so
	// each workload starts from an equivalent state.
	type group struct {
		w      bench.Workload
		target bench.Opener // nil: a CIDStore
	}
	var plan []group
	for _, d := range durable {
		for _, n := range counts {
			gw := w
			gw.Shards = n
			if d {
				gw.Dir = "durable" // replaced by a fresh directory per group
			}
			plan = append(plan, group{w: gw})
		}
	}
	if *baselines {
		for _, open := range []bench.Opener{bench.XSyncTarget(), bench.SyncMapTarget()} {
			plan = append(plan, group{w: w, target: open})
		}
	}
	points := len(plan) * len(presets)
	if w.Duration == 0 && w.Ops == 0 {
		w.Duration = max(20*time.Millisecond, (benchBudget / time.Duration(points)).Round(10*time.Millisecond))
		for i := range plan {
			plan[i].w.Duration = w.Duration
		}
	}

	tmp, err := os.MkdirTemp(*tmpParent, "cidstore-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if *format == "table" {
		what := fmt.Sprintf("%v per point", w.Duration)
		if w.Ops > 0 {
			what = fmt.Sprintf("%d ops per point", w.Ops)
		}
		fmt.Fprintf(stdout, "%d points, %s, %d goroutines, %d keys x %d values preloaded, %s keys, batch %d, GOMAXPROCS=%d\n",
			points, what, w.Goroutines, w.KeySpace, w.ValuesPerKey, w.Dist, w.BatchSize, runtime.GOMAXPROCS(0))
	}
	bar := newBenchBar(points)
	var results []bench.Result
	var runErr error
	for i, g := range plan {
		if ctx.Err() != nil {
			break
		}
		gw := g.w
		if gw.Dir != "" {
			gw.Dir = filepath.Join(tmp, strconv.Itoa(i))
		}
		open := g.target
		if open == nil && *data == "triples" {
			open = bench.TripleTarget(gw.Dir, gw.StoreOptions())
		} else if open == nil {
			open = bench.StoreTarget(gw.Dir, gw.StoreOptions())
		}
		rs, err := bench.RunMixes(ctx, open, gw, presets, func(m bench.Mix, done *bench.Result) {
			if done != nil {
				bar.add()
			} else {
				bar.describe(fmt.Sprintf("%s shards=%d %s", gw.Mode(), gw.Shards, m.Name))
			}
		})
		results = append(results, rs...)
		if gw.Dir != "" {
			os.RemoveAll(gw.Dir)
		}
		if err != nil {
			if ctx.Err() == nil {
				runErr = fmt.Errorf("shards=%d/mode=%s: %w", gw.Shards, gw.Mode(), err)
			}
			break
		}
	}
	bar.finish()
	// Report by target, mode, workload, then shard count.
	slices.SortStableFunc(results, func(a, b bench.Result) int {
		return cmp.Or(cmp.Compare(targetRank(a.Target), targetRank(b.Target)), cmp.Compare(modeRank(a.Mode), modeRank(b.Mode)),
			cmp.Compare(bench.MixRank(presets, a.Workload.Name), bench.MixRank(presets, b.Workload.Name)))
	})

	if *format == "gobench" {
		if err := bench.WriteGoBenchHeader(stdout, "github.com/cidstore/cidstore/cmd/cidstore", cpuModel()); err != nil {
			return err
		}
		if err := bench.WriteGoBench(stdout, results); err != nil {
			return err
		}
	} else if err := printBenchTable(stdout, results); err != nil {
		return err
	}

	dir := *out
	if dir == "" {
		dir = defaultBenchOut()
	}
	if dir != "-" && len(results) > 0 {
		files, err := writeBenchFiles(dir, results)
		if err != nil {
			return errors.Join(runErr, err)
		}
		note := stdout
		if *format == "gobench" {
			note = os.Stderr // keep stdout clean for benchstat
		}
		fmt.Fprintf(note, "wrote %s\n", strings.Join(files, ", "))
	}
	if runErr == nil {
		runErr = context.Cause(ctx)
	}
	return runErr
}

func targetRank(t string) int {
	if bench.IsCIDStore(t) {
		return 0
	}
	return 1
}

func modeRank(m string) int {
	if m == "memory" {
		return 0
	}
	return 1
}

func parsePresets(list string, reads, deletes int) ([]bench.Mix, error) {
	if reads >= 0 {
		m, err := bench.CustomMix(reads, deletes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		return []bench.Mix{m}, nil
	}
	if deletes >= 0 {
		return nil, fmt.Errorf("%w: -deletes needs -reads", errUsage)
	}
	ms, err := bench.ParseMixes(list)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return ms, nil
}

// printBenchTable prints one row per result; "vs first" is the throughput
// relative to the first shard count of the same target, workload and mode.
func printBenchTable(stdout io.Writer, results []bench.Result) error {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tworkload\tmode\tshards\tops/s\tp50 µs\tp99 µs\tp99.9 µs\theap B/pair\tvs first\t")
	first := map[string]float64{}
	for _, r := range results {
		group := r.Target + "/" + r.Workload.Name + "/" + r.Mode
		if _, ok := first[group]; !ok {
			first[group] = r.OpsPerSec()
		}
		shards := "-"
		if bench.IsCIDStore(r.Target) {
			shards = strconv.Itoa(r.Workload.Shards)
		}
		vs := 0.0
		if b := first[group]; b > 0 {
			vs = r.OpsPerSec() / b
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t%.2fx\t\n", r.Target, r.Workload.Name, r.Mode, shards,
			r.OpsPerSec(), us(r.P50()), us(r.P99()), us(r.P999()), r.HeapPerPair, vs)
	}
	return tw.Flush()
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// writeBenchFiles writes results.csv and, for the CIDStore results, the
// charts into dir, creating it.
func writeBenchFiles(dir string, results []bench.Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	csvPath := filepath.Join(dir, "results.csv")
	f, err := os.Create(csvPath)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriter(f)
	err = bench.WriteCSV(bw, results)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	var ours []bench.Result
	for _, r := range results {
		if bench.IsCIDStore(r.Target) {
			ours = append(ours, r)
		}
	}
	charts, err := bench.WriteCharts(dir, ours)
	return append([]string{csvPath}, charts...), err
}

// benchBar is a progress bar over the sweep's points on a terminal's
// stderr; elsewhere it does nothing.
type benchBar struct{ bar *progressbar.ProgressBar }

func newBenchBar(points int) benchBar {
	if !isTerminal(os.Stderr) {
		return benchBar{}
	}
	return benchBar{bar: progressbar.NewOptions(points,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30))}
}

func (b benchBar) describe(s string) {
	if b.bar != nil {
		b.bar.Describe(s)
	}
}

func (b benchBar) add() {
	if b.bar != nil {
		b.bar.Add(1)
	}
}

func (b benchBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
}

// cpuModel is the processor's model name from /proc/cpuinfo, or "".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: bad count %q in %q", errUsage, f, s)
		}
		out = append(out, n)
	}
	return out, nil
}
