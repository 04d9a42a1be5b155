package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/cidstore/cidstore/bench"
)

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench", stdout)
	shards := fs.String("shards", "1,4,16,64", "comma-separated shard counts to compare")
	w := bench.Workload{}
	fs.IntVar(&w.Goroutines, "goroutines", 2*runtime.GOMAXPROCS(0), "concurrent workers")
	fs.DurationVar(&w.Duration, "duration", 2e9, "run time per shard count")
	fs.IntVar(&w.ReadPct, "reads", 90, "percentage of operations that are reads")
	fs.Uint64Var(&w.KeySpace, "keys", 1<<20, "number of distinct keys")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	counts, err := parseInts(*shards)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "in-memory store, %d goroutines, %d%% reads, %d keys, %v per run, GOMAXPROCS=%d\n",
		w.Goroutines, w.ReadPct, w.KeySpace, w.Duration, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shards\tops/s\treads/s\twrites/s\tvs first\t")
	var base float64
	for _, n := range counts {
		w.Shards = n
		res, err := bench.Run(ctx, w)
		if err != nil {
			return err
		}
		if base == 0 {
			base = res.OpsPerSec()
		}
		sec := res.Elapsed.Seconds()
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.2fx\t\n", n, res.OpsPerSec(),
			float64(res.Reads)/sec, float64(res.Writes)/sec, res.OpsPerSec()/base)
		if err := ctx.Err(); err != nil {
			break
		}
	}
	return tw.Flush()
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
