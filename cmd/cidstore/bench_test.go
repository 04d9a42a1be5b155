package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A bench run without -out writes no files from tests.
func init() { defaultBenchOut = func() string { return "-" } }

func TestBenchSweepFiles(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "-shards", "1,4", "-duration", "10ms", "-keys", "256", "-mode", "both", "-baselines", "-out", out, "-tmp", t.TempDir()}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"read-heavy", "write-heavy", "always", "XSyncMapOf", "SyncMap", "vs first", "results.csv"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	f, err := os.Open(filepath.Join(out, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	// 2 modes x 2 shard counts x 3 workloads + 2 baselines x 3 workloads, plus the header.
	if err != nil || len(rows) != 19 {
		t.Fatalf("results.csv: %v, %d rows", err, len(rows))
	}
	for _, name := range []string{"throughput-memory.png", "p99-memory.png", "throughput-always.png", "p99-always.png"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBenchGoBenchFormat(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "-shards", "2", "-ops", "500", "-keys", "128", "-mode", "memory", "-workloads", "mixed", "-format", "gobench", "-out", "-"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	line := regexp.MustCompile(`(?m)^BenchmarkCIDStore/workload=mixed/shards=2/mode=memory-\d+\t500\t[\d.]+ ns/op\t[\d.]+ ops/s\t[\d.]+ p50-µs\t[\d.]+ p99-µs\t[\d.]+ p99.9-µs\t-?[\d.]+ heap-B/pair$`)
	if !line.MatchString(stdout.String()) || !strings.HasPrefix(stdout.String(), "goos: ") {
		t.Fatalf("gobench output:\n%s", stdout.String())
	}
}

// -data triples runs the sweep through the triple API.
func TestBenchTriples(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "-data", "triples", "-shards", "1,2", "-ops", "400", "-keys", "128", "-mode", "both", "-format", "gobench", "-out", "-", "-tmp", t.TempDir()}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"BenchmarkCIDStore-triples/workload=mixed/shards=2/mode=always", "BenchmarkCIDStore-triples/workload=read-heavy/shards=1/mode=memory"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "sometimes"}, {"-format", "xml"}, {"-data", "quads"}, {"-workloads", "read-mostly"}, {"-dist", "pareto"},
		{"-reads", "101"}, {"-reads", "80", "-deletes", "30"}, {"-deletes", "5"}, {"-shards", "1,x"}, {"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"bench"}, args...), &stdout, &stderr); code != 2 {
			t.Errorf("bench %v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
	// A custom mix with a Zipfian key distribution and batched inserts.
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "-shards", "2", "-ops", "300", "-keys", "64", "-mode", "memory", "-reads", "70", "-dist", "zipf", "-batch", "8"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "r70-d15") {
		t.Fatalf("exit %d: %s %s", code, stdout.String(), stderr.String())
	}
}
