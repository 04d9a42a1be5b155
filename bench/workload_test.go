package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunSmoke(t *testing.T) {
	res, err := Run(context.Background(), Workload{Shards: 4, Goroutines: 4, Duration: 50 * time.Millisecond, ReadPct: 50, KeySpace: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Reads == 0 || res.Writes == 0 || res.OpsPerSec() <= 0 {
		t.Fatalf("result %+v", res)
	}
	if res.Latency.TotalCount() != res.Ops || res.P50() <= 0 || res.P99() < res.P50() || res.P999() < res.P99() {
		t.Fatalf("latency: count %d of %d ops, p50 %v p99 %v p99.9 %v", res.Latency.TotalCount(), res.Ops, res.P50(), res.P99(), res.P999())
	}
	if res.Target != "CIDStore" || res.Mode != "memory" {
		t.Fatalf("target %q mode %q", res.Target, res.Mode)
	}
}

func TestRunRejectsBadWorkload(t *testing.T) {
	for _, w := range []Workload{
		{ReadPct: 101}, {ReadPct: -1}, {Goroutines: -1}, {Duration: -1}, {Ops: -1},
		{ReadPct: 60, DeletePct: 50}, {DeletePct: -1}, {Dist: Zipf, ZipfS: 1}, {Dist: 7},
		{ValuesPerKey: -1}, {BatchSize: -1},
	} {
		if _, err := Run(context.Background(), w); err == nil {
			t.Errorf("Run(%+v) accepted", w)
		}
	}
}

// TestTargets runs an exact operation count with every kind of operation
// on each built-in target, and checks the final state is a valid one.
func TestTargets(t *testing.T) {
	dir := t.TempDir()
	targets := []Opener{
		StoreTarget("", store.Options{Shards: 2}),
		StoreTarget(dir, Workload{Shards: 2, Sync: store.SyncNever}.StoreOptions()),
		XSyncTarget(),
		SyncMapTarget(),
	}
	for _, open := range targets {
		for _, dist := range []Distribution{Uniform, Zipf} {
			tg, err := open()
			if err != nil {
				t.Fatal(err)
			}
			w := Workload{Goroutines: 3, Ops: 3001, ReadPct: 40, DeletePct: 30, KeySpace: 200, ValuesPerKey: 3,
				Preload: true, BatchSize: 4, Dist: dist, Seed: 9}
			res, err := RunTarget(context.Background(), tg, w)
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops != 3001 || res.Reads == 0 || res.Inserts == 0 || res.Deletes == 0 || res.Pairs != 4*res.Inserts {
				t.Fatalf("%s/%v: %+v", res.Target, dist, res)
			}
			if res.PreloadPairs != 600 || res.PreloadTime <= 0 {
				t.Fatalf("%s: preload %d pairs in %v", res.Target, res.PreloadPairs, res.PreloadTime)
			}
			// Every value present belongs to its key's universe, sorted or not.
			for i := range uint64(200) {
				vals, err := tg.AppendValues(nil, Key(i))
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range vals {
					if !slices.ContainsFunc([]uint64{0, 1, 2, 3, 4, 5}, func(j uint64) bool { return Value(i, j) == v }) {
						t.Fatalf("%s: key %d has foreign value %v", res.Target, i, v)
					}
				}
				if len(vals) > 6 {
					t.Fatalf("%s: key %d has %d values", res.Target, i, len(vals))
				}
			}
			if err := tg.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestBaselineSemantics checks the baselines behave as sets.
func TestBaselineSemantics(t *testing.T) {
	for _, open := range []Opener{XSyncTarget(), SyncMapTarget()} {
		tg, _ := open()
		k, a, b := Key(1), Value(1, 0), Value(1, 1)
		tg.Insert(k, b)
		tg.Insert(k, a)
		tg.Insert(k, b)
		got, _ := tg.AppendValues(nil, k)
		if want := []cid.CID{a, b}; cid.Less(b, a) && !slices.Equal(got, []cid.CID{b, a}) || !cid.Less(b, a) && !slices.Equal(got, want) {
			t.Fatalf("%s: got %v", tg.Name(), got)
		}
		tg.Delete(k, a)
		tg.Delete(k, a)
		tg.Delete(k, b)
		if got, _ := tg.AppendValues(nil, k); len(got) != 0 {
			t.Fatalf("%s: after deletes %v", tg.Name(), got)
		}
		tg.Close()
	}
}

func TestHeapPerPair(t *testing.T) {
	res, err := Run(context.Background(), Workload{Shards: 4, Goroutines: 2, Ops: 10, ReadPct: 100, KeySpace: 4096, ValuesPerKey: 4, Preload: true})
	if err != nil {
		t.Fatal(err)
	}
	// A pair is at least its 32-byte value; anything under that, or
	// absurdly over, means the measurement is broken.
	if res.HeapPerPair < 32 || res.HeapPerPair > 4096 {
		t.Fatalf("heap bytes per pair %.1f", res.HeapPerPair)
	}
}

func TestReports(t *testing.T) {
	var results []Result
	for _, name := range []string{"read-heavy", "mixed"} {
		for _, shards := range []int{1, 4} {
			res, err := Run(context.Background(), Workload{Name: name, Shards: shards, Goroutines: 2, Ops: 200, ReadPct: 50, KeySpace: 100, Preload: true})
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, res)
		}
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, results); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 5 || len(rows[1]) != len(CSVHeader) {
		t.Fatalf("csv: %v, %d rows", err, len(rows))
	}
	buf.Reset()
	if err := WriteGoBench(&buf, results); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^BenchmarkCIDStore/workload=(read-heavy|mixed)/shards=[14]/mode=memory-\d+\t\d+\t[\d.]+ ns/op\t[\d.]+ ops/s\t[\d.]+ p50-µs\t[\d.]+ p99-µs\t[\d.]+ p99.9-µs\t[\d.]+ heap-B/pair$`)
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !line.MatchString(l) {
			t.Errorf("bad gobench line %q", l)
		}
	}
	dir := t.TempDir()
	files, err := WriteCharts(dir, results)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("charts %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
	}
	// One shard count only: the log axis must still work.
	if _, err := WriteCharts(t.TempDir(), results[:1]); err != nil {
		t.Fatal(err)
	}
}

func TestParseCustomMixes(t *testing.T) {
	ms, err := ParseMixes("write-heavy, r0-d0,r70-d15")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[1] != (Mix{"r0-d0", 0, 0}) || ms[2] != (Mix{"r70-d15", 70, 15}) {
		t.Fatalf("ParseMixes = %+v", ms)
	}
	for _, bad := range []string{"r0-d0x", "r-1-d0", "r50-d60", "r0d0", "inserts"} {
		if _, err := ParseMixes(bad); err == nil {
			t.Errorf("ParseMixes(%q) succeeded", bad)
		}
	}
}
