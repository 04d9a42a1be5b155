package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/triples"
	"github.com/cidstore/cidstore/vfs"
)

// Helpers that the package's tests, fuzz targets and benchmarks share.
// (processCPU, which needs build tags, is in cputime_*_test.go.)

// w returns a small CID with i in its last word.
func w(i uint64) cid.CID { return cid.FromWords(0, 0, 0, i) }

// openMem opens an in-memory store, closed when the test ends.
func openMem(t testing.TB, o Options) *Store {
	t.Helper()
	o.InMemory = true
	s, err := Open("", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openDir opens the store in dir or fails the test.
func openDir(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withConfig returns DefaultConfig changed by fn, for Options.Config.
func withConfig(fn func(*Config)) *Config {
	c := DefaultConfig()
	fn(&c)
	return &c
}

// must fails the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// model is the reference: a plain map of sets.
type model map[cid.CID]map[cid.CID]bool

func (m model) values(k cid.CID) []cid.CID {
	var vs []cid.CID
	for v := range m[k] {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, cid.Compare)
	return vs
}

func (m model) add(k, v cid.CID) {
	if m[k] == nil {
		m[k] = map[cid.CID]bool{}
	}
	m[k][v] = true
}

// apply applies ops, which must be valid, to m in order, as ApplyBatch
// does, and returns which of them changed m, as ApplyPairs reports it.
func (m model) apply(ops []PairOp) []bool {
	changed := make([]bool, len(ops))
	for i, o := range ops {
		lo, err := o.logOp()
		if err != nil {
			panic(err)
		}
		switch lo.kind {
		case opAdd:
			changed[i] = !m[lo.key][lo.val]
		case opRemove:
			changed[i] = m[lo.key][lo.val]
		case opRemoveKey:
			changed[i] = len(m[lo.key]) > 0
		}
		m.applyOp(lo)
	}
	return changed
}

// applyOp applies one logged operation to m, as recovery does.
func (m model) applyOp(o op) {
	switch o.kind {
	case opAdd:
		m.add(o.key, o.val)
	case opRemove:
		if delete(m[o.key], o.val); len(m[o.key]) == 0 {
			delete(m, o.key)
		}
	case opRemoveKey:
		delete(m, o.key)
	}
}

// checkAll compares ordered iteration of the whole store with m: every
// key's values, the key order and the counts.
func checkAll(t *testing.T, s *Store, m model, seed uint64, step int) {
	t.Helper()
	var keys []cid.CID
	pairs := 0
	for k, vs := range s.All() {
		if want := m.values(k); !slices.Equal(vs, want) {
			t.Fatalf("seed %d step %d: All: %v = %v, want %v", seed, step, k.EString(), vs, want)
		}
		keys = append(keys, k)
		pairs += len(vs)
	}
	if !slices.IsSortedFunc(keys, cid.Compare) {
		t.Fatalf("seed %d step %d: All not in key order", seed, step)
	}
	if len(keys) != len(m) || s.Len() != len(m) || s.Pairs() != pairs {
		t.Fatalf("seed %d step %d: %d keys iterated, Len %d, Pairs %d/%d, model %d", seed, step, len(keys), s.Len(), s.Pairs(), pairs, len(m))
	}
}

func fill(t *testing.T, s *Store, m model, from, to uint64) {
	t.Helper()
	for i := from; i < to; i++ {
		k, v := w(i%97+1), w(i%13+1)
		must(t, s.Insert(k, v))
		m.add(k, v)
	}
}

func sameModel(a, b model) bool {
	if len(a) != len(b) {
		return false
	}
	for k, vs := range a {
		if len(vs) != len(b[k]) {
			return false
		}
		for v := range vs {
			if !b[k][v] {
				return false
			}
		}
	}
	return true
}

func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	must(t, err)
	return segs
}

// hookFS calls a hook before selected filesystem operations. The hooks
// image the directory at exactly that moment: since every byte written so
// far is in the page cache, a copy of the files is what a process crash
// at that point would leave behind.
type hookFS struct {
	vfs.FS
	mu       sync.Mutex
	onWrite  func(name string) // before each File.Write
	onRename func(oldpath, newpath string)
	onRemove func(name string)
}

func (h *hookFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, h: h, name: name}, nil
}

func (h *hookFS) Rename(oldpath, newpath string) error {
	h.mu.Lock()
	fn := h.onRename
	h.mu.Unlock()
	if fn != nil {
		fn(oldpath, newpath)
	}
	return h.FS.Rename(oldpath, newpath)
}

func (h *hookFS) Remove(name string) error {
	h.mu.Lock()
	fn := h.onRemove
	h.mu.Unlock()
	if fn != nil {
		fn(name)
	}
	return h.FS.Remove(name)
}

type hookFile struct {
	vfs.File
	h    *hookFS
	name string
}

func (f *hookFile) Write(p []byte) (int, error) {
	f.h.mu.Lock()
	fn := f.h.onWrite
	f.h.mu.Unlock()
	if fn != nil {
		fn(f.name)
	}
	return f.File.Write(p)
}

// imageDir copies the store directory src (files only, no LOCK) to a new
// directory: the state a crash at this moment would leave.
func imageDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path != src {
			return nil // renamed or removed meanwhile (a segment being created)
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if fi.Name() == lockName {
			return nil
		}
		in, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(filepath.Join(dst, rel), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// tripleModel is the reference for triples: the set of present triples.
type tripleModel = triples.Model

// checkTriples compares the answers of all eight patterns (components
// drawn from 1..c, each bound or a wildcard) and the count with the model.
func checkTriples(t *testing.T, s *Store, m tripleModel, c int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(m)), uint64(c)))
	for mask := range 8 {
		for range 3 {
			var q [3]cid.CID
			for i := range q {
				if mask&(1<<i) != 0 {
					q[i] = w(1 + rng.Uint64N(uint64(c)))
				}
			}
			got := slices.Collect(s.Query(q[0], q[1], q[2]))
			if want := m.Match(q[0], q[1], q[2]); !slices.Equal(got, want) {
				t.Fatalf("Query(%v): %d triples, want %d", q, len(got), len(want))
			}
		}
	}
	if s.TripleCount() != len(m) {
		t.Fatalf("TripleCount = %d, want %d", s.TripleCount(), len(m))
	}
	for tr := range m {
		if !s.HasTriple(tr) {
			t.Fatalf("HasTriple(%v) = false", tr)
		}
	}
}

// fuzzInput hands out the bytes of a fuzz input; past the end it yields
// zeros and reports done.
type fuzzInput struct {
	data []byte
	pos  int
}

func (in *fuzzInput) done() bool { return in.pos >= len(in.data) }

func (in *fuzzInput) byte() byte {
	if in.pos >= len(in.data) {
		in.pos++
		return 0
	}
	b := in.data[in.pos]
	in.pos++
	return b
}

func (in *fuzzInput) uint16() int { return int(in.byte())<<8 | int(in.byte()) }

// fuzzOptions returns options for a persistent store whose background
// workers are all off (the targets trigger them), with the WAL written
// without fsync (a crash is not simulated here; Close still fsyncs).
func fuzzOptions(shards, inline, kept int, segSize int64) Options {
	c := DefaultConfig()
	c.InlineValues = inline
	c.SnapshotsKept = kept
	c.Sync = SyncNever
	c.CheckpointWALBytes = 0
	c.CheckpointInterval = 0
	c.CompactInterval = 0
	c.GCInterval = 0
	c.ScrubInterval = 0
	c.AuditInterval = 0
	return Options{Shards: shards, SegmentSize: segSize, Config: &c}
}

// childDie returns how a crash child gives up: a message on stderr and
// exit status 3, which the parent reports as a failure.
func childDie(who string) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, who+": "+format+"\n", args...)
		os.Exit(3)
	}
}

// benchKey returns a random-looking CID for index i: real CIDs are hashes.
func benchKey(i uint64) cid.CID {
	return cid.FromWords(splitmix(i), splitmix(i^0x9e3779b97f4a7c15), splitmix(i+7), splitmix(^i))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// worker gives each RunParallel goroutine its own stride through indexes.
var workerSeq atomic.Uint64

func nextWorker() uint64 { return workerSeq.Add(1) * 0x51ed27 }

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// residentBytes returns the process's resident set size where
// /proc/self/statm tells it (Linux), else 0.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// benchOpen opens the store in dir, checks what it recovered with ok,
// reports the time Open took, the snapshot's share of it, items per
// second under unit, the CPU time and minor page faults of Open, the
// process's peak RSS, and the heap per item and the RSS after a
// collection, and closes the store.
func benchOpen(b *testing.B, dir string, items uint64, unit string, ok func(*Store) bool) {
	u0, start := processUsage(), time.Now()
	r, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	d, u := time.Since(start), processUsage()
	rec := r.Stats().Recovery
	if !ok(r) {
		b.Fatalf("recovered %+v", rec)
	}
	b.ReportMetric(d.Seconds(), "s/open")
	b.ReportMetric(rec.SnapshotDuration.Seconds(), "s/snapshot")
	b.ReportMetric(float64(items)/d.Seconds(), unit)
	// Where the directory was built by another process (see
	// CIDSTORE_BENCH_RECOVERY_DIR), Open runs in a fresh one, and first
	// touches of memory (minor faults) are a large part of its time.
	b.ReportMetric((u.cpu - u0.cpu).Seconds(), "cpu-s/open")
	b.ReportMetric(float64(u.minflt-u0.minflt), "minflt/open")
	b.ReportMetric(float64(u.maxRSS)/(1<<20), "maxRSS-MiB")
	// What the recovered store keeps: the live heap after a collection,
	// and the resident set then (which still holds the memory the
	// recovery freed until the runtime returns it to the OS).
	b.ReportMetric(float64(heapInUse())/float64(items), "heap-B/item")
	if rss := residentBytes(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "rss-after-MiB")
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
}
