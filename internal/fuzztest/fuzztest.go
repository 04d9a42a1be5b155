// Package fuzztest holds what the fuzz tests of several packages share:
// a bound on what a decoder allocates, and the rewriting of a checked-in
// seed corpus from the real writers (go test -gencorpus).
package fuzztest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Regenerate is the -gencorpus flag: tests that write a seed corpus from
// the real writers run only with it, and rewrite testdata/fuzz/.
var Regenerate = flag.Bool("gencorpus", false, "rewrite the checked-in seed corpora of the fuzz targets from the real writers")

// Allocated returns the bytes allocated while fn ran (the TotalAlloc
// difference). It also counts the little that other goroutines allocate
// meanwhile, which the bounds checked with it leave room for.
func Allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// WriteSeed writes data as the seed named name of the fuzz target target,
// in testdata/fuzz/target/ of the package under test, in the format go
// test reads.
func WriteSeed(t testing.TB, target, name string, data []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), seed, 0o644); err != nil {
		t.Fatal(err)
	}
}
