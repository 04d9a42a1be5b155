package bench

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// CSVHeader is the first row WriteCSV writes.
var CSVHeader = []string{
	"target", "workload", "mode", "shards", "goroutines", "dist", "keys", "values_per_key",
	"read_pct", "delete_pct", "batch", "elapsed_s", "ops", "ops_per_s", "reads", "inserts", "deletes",
	"p50_us", "p99_us", "p999_us", "max_us", "preload_pairs", "preload_s", "heap_bytes_per_pair",
	"rss_bytes_per_pair", "target_used_bytes_per_pair", "target_rss_bytes_per_pair",
}

// WriteCSV writes one row per result, after CSVHeader.
func WriteCSV(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	us := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 3, 64) }
	f := func(x float64, prec int) string { return strconv.FormatFloat(x, 'f', prec, 64) }
	for _, r := range results {
		wl := r.Workload
		row := []string{
			r.Target, wl.Name, r.Mode, strconv.Itoa(wl.Shards), strconv.Itoa(wl.Goroutines), wl.Dist.String(),
			strconv.FormatUint(wl.KeySpace, 10), strconv.Itoa(wl.ValuesPerKey),
			strconv.Itoa(wl.ReadPct), strconv.Itoa(wl.DeletePct), strconv.Itoa(wl.BatchSize),
			f(r.Elapsed.Seconds(), 4), strconv.FormatInt(r.Ops, 10), f(r.OpsPerSec(), 1),
			strconv.FormatInt(r.Reads, 10), strconv.FormatInt(r.Inserts, 10), strconv.FormatInt(r.Deletes, 10),
			us(r.P50()), us(r.P99()), us(r.P999()), us(r.MaxLatency()),
			strconv.FormatInt(r.PreloadPairs, 10), f(r.PreloadTime.Seconds(), 4), f(r.HeapPerPair, 1),
			f(r.RSSPerPair, 1), f(r.TargetUsedPerPair, 1), f(r.TargetRSSPerPair, 1),
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// BenchName is the result's name in Go benchmark format, without the
// "Benchmark" prefix and the -GOMAXPROCS suffix:
// "CIDStore/workload=mixed/shards=8/mode=memory".
func BenchName(r Result) string {
	var b strings.Builder
	b.WriteString(benchSafe(r.Target))
	if r.Workload.Name != "" {
		fmt.Fprintf(&b, "/workload=%s", benchSafe(r.Workload.Name))
	}
	if IsCIDStore(r.Target) {
		if r.Workload.Shards > 0 {
			fmt.Fprintf(&b, "/shards=%d", r.Workload.Shards)
		} else {
			b.WriteString("/shards=default")
		}
	}
	if r.Workload.Dist != Uniform {
		fmt.Fprintf(&b, "/dist=%s", r.Workload.Dist)
	}
	if r.Workload.BatchSize > 1 {
		fmt.Fprintf(&b, "/batch=%d", r.Workload.BatchSize)
	}
	fmt.Fprintf(&b, "/mode=%s", benchSafe(r.Mode))
	return b.String()
}

// benchSafe replaces the characters that would split a benchmark name.
func benchSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' {
			return '_'
		}
		return r
	}, s)
}

// WriteGoBenchHeader writes the goos/goarch/pkg/cpu lines benchstat
// reads as configuration.
func WriteGoBenchHeader(w io.Writer, pkg, cpu string) error {
	_, err := fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: %s\n", runtime.GOOS, runtime.GOARCH, pkg)
	if err == nil && cpu != "" {
		_, err = fmt.Fprintf(w, "cpu: %s\n", cpu)
	}
	return err
}

// WriteGoBench writes one line per result in Go benchmark format, so that
// benchstat can compare two runs:
//
//	BenchmarkCIDStore/workload=mixed/shards=8/mode=memory-2  N  X ns/op  Y ops/s  P p50-µs  Q p99-µs  R p99.9-µs  H heap-B/pair
func WriteGoBench(w io.Writer, results []Result) error {
	procs := runtime.GOMAXPROCS(0)
	for _, r := range results {
		line := fmt.Sprintf("Benchmark%s-%d\t%d\t%.2f ns/op\t%.0f ops/s\t%.3f p50-µs\t%.3f p99-µs\t%.3f p99.9-µs",
			BenchName(r), procs, r.Ops, r.NsPerOp(), r.OpsPerSec(),
			float64(r.P50())/1e3, float64(r.P99())/1e3, float64(r.P999())/1e3)
		if r.PreloadPairs > 0 {
			line += fmt.Sprintf("\t%.1f heap-B/pair", r.HeapPerPair)
			if r.TargetUsedPerPair != 0 {
				line += fmt.Sprintf("\t%.1f used-B/pair", r.TargetUsedPerPair)
			}
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// WriteCharts draws, for every (target, mode) among results, throughput
// against shard count and p99 latency against shard count, one line per
// workload, as PNG files in dir. It returns the files written.
func WriteCharts(dir string, results []Result) ([]string, error) {
	type group struct{ target, mode string }
	var groups []group
	by := map[group][]Result{}
	for _, r := range results {
		g := group{r.Target, r.Mode}
		if _, ok := by[g]; !ok {
			groups = append(groups, g)
		}
		by[g] = append(by[g], r)
	}
	var files []string
	for _, g := range groups {
		rs := by[g]
		suffix := g.mode
		if g.target != "CIDStore" {
			suffix = g.target + "-" + g.mode
		}
		for _, c := range []struct {
			file, title, ylabel string
			y                   func(Result) float64
		}{
			{"throughput", "throughput", "operations / s", Result.OpsPerSec},
			{"p99", "p99 latency", "p99 latency (µs)", func(r Result) float64 { return float64(r.P99()) / 1e3 }},
		} {
			name := filepath.Join(dir, c.file+"-"+fileSafe(suffix)+".png")
			title := fmt.Sprintf("%s %s by shard count (%s)", g.target, c.title, g.mode)
			if err := lineChart(name, title, c.ylabel, rs, c.y); err != nil {
				return files, err
			}
			files = append(files, name)
		}
	}
	return files, nil
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, s)
}

// lineChart plots y against shard count (log2 axis), one line per
// workload name, in first-seen order.
func lineChart(file, title, ylabel string, rs []Result, y func(Result) float64) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "shards"
	p.Y.Label.Text = ylabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = pow2Ticks{}
	p.Y.Min = 0
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	var names []string
	pts := map[string]plotter.XYs{}
	for _, r := range rs {
		n := r.Workload.Name
		if _, ok := pts[n]; !ok {
			names = append(names, n)
		}
		pts[n] = append(pts[n], plotter.XY{X: float64(max(r.Workload.Shards, 1)), Y: y(r)})
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, xy := range pts {
		for _, pt := range xy {
			lo, hi = min(lo, pt.X), max(hi, pt.X)
		}
	}
	if len(pts) > 0 {
		p.X.Min, p.X.Max = lo/1.4, hi*1.4
	}
	var args []any
	for _, n := range names {
		xy := pts[n]
		slices.SortFunc(xy, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		args = append(args, n, xy)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	p.Y.Max *= 1.3 // headroom for the legend
	p.Legend.XOffs = -vg.Points(8)
	return p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

// pow2Ticks labels the powers of two in an axis range.
type pow2Ticks struct{}

func (pow2Ticks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log2(max(lo, 1))); math.Exp2(e) <= hi*1.0001; e++ {
		v := math.Exp2(e)
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ts
}
