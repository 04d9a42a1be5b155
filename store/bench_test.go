package store

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/google/btree"
	"github.com/puzpuzpuz/xsync/v3"
)

// The in-memory benchmarks of the pair API. Most compare the store (at
// the default shard count) with a raw xsync.MapOf[[32]byte, [32]byte]
// doing the nearest map operation in the same run (InsertDuplicate and
// Delete have no such baseline), so read the ratio, not
// the absolute numbers (the machine is noisy). The data set is benchN
// random keys with one random value each; the store and the map are both
// filled in the same order, and operations visit keys in a shuffled order
// precomputed outside the timer (so neither side pays for making keys, and
// nothing is looked up in insertion order, which would find records next
// to each other in memory). Every parallel benchmark runs GOMAXPROCS
// goroutines, each from its own point of the shuffled order. Run with
//
//	go test ./store -run '^$' -bench '^Benchmark(Get|Insert|Delete|Mixed)' -cpu 2 -count 5 | tee new.txt
//	benchstat old.txt new.txt
//
// InsertNew grows its store and map with b.N; give it a fixed count
// (-benchtime 1000000x) so both sides grow to the same size. Memory has
// its own command (see its comment).

// benchN is the number of keys the read and update benchmarks preload.
const benchN = 1_000_000

// benchPair returns pair i of the data set: key benchKey(i), one value.
func benchPair(i uint64) Pair { return Pair{benchKey(i), benchKey(i + 1<<40)} }

// benchData is the data set: the pairs in insertion order, the same pairs
// shuffled (the order operations visit them) and as many absent keys.
type benchData struct {
	pairs, shuffled []Pair
	absent          []cid.CID
}

var (
	benchDataOnce sync.Once
	benchDataSet  benchData
)

func loadBenchData() *benchData {
	benchDataOnce.Do(func() {
		d := &benchDataSet
		d.pairs = make([]Pair, benchN)
		d.absent = make([]cid.CID, benchN)
		for i := range d.pairs {
			d.pairs[i] = benchPair(uint64(i))
			d.absent[i] = benchKey(uint64(i) + 1<<50)
		}
		d.shuffled = append([]Pair(nil), d.pairs...)
		rng := rand.New(rand.NewPCG(1, 2))
		rng.Shuffle(len(d.shuffled), func(i, j int) { d.shuffled[i], d.shuffled[j] = d.shuffled[j], d.shuffled[i] })
	})
	return &benchDataSet
}

// benchStore returns an in-memory store at the default shard count holding
// pairs, inserted in order in batches.
func benchStore(b *testing.B, pairs []Pair) *Store {
	b.Helper()
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	for len(pairs) > 0 {
		n := min(len(pairs), 4096)
		if err := s.InsertBatch(pairs[:n]); err != nil {
			b.Fatal(err)
		}
		pairs = pairs[n:]
	}
	return s
}

// rawMap is the baseline: a raw xsync.MapOf holding pairs, stored in order.
func rawMap(pairs []Pair) *xsync.MapOf[[32]byte, [32]byte] {
	m := xsync.NewMapOf[[32]byte, [32]byte]()
	for _, p := range pairs {
		m.Store(p.Key, p.Value)
	}
	return m
}

// startAt gives each RunParallel goroutine its own starting point in the
// shuffled order, spread over the data set.
func startAt(n int) int { return int(nextWorker() % uint64(n)) }

// runParallel starts the timer after a collection (so garbage from setup
// is not charged to the measurement) and calls body on GOMAXPROCS
// goroutines. Besides wall time it reports cpu-ns/op, the process's CPU
// time (user and system, every thread, the collector's included) per
// operation: on a shared machine wall time also counts the time other
// processes held the cores, CPU time does not.
func runParallel(b *testing.B, body func(pb *testing.PB)) {
	runtime.GC()
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(body)
	b.StopTimer()
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// readFixture is what the read benchmarks share, built on first use and
// kept for the rest of the process so that alternated runs (-count) do not
// rebuild it: the data set and a store holding it. The raw map is built
// for each baseline run and dropped after it, so that it is not live (and
// marked by every collection) while the store's Get allocates.
type readFixture struct {
	*benchData
	s *Store
}

var (
	readFixtureOnce sync.Once
	readFixtureSet  readFixture
)

func loadReadFixture(b *testing.B) *readFixture {
	readFixtureOnce.Do(func() {
		d := loadBenchData()
		readFixtureSet = readFixture{benchData: d, s: benchStore(b, d.pairs)}
	})
	if readFixtureSet.s == nil {
		b.Fatal("read fixture failed to build")
	}
	return &readFixtureSet
}

// closeBenchFixtures closes the shared store, if a benchmark built it.
func closeBenchFixtures() {
	if readFixtureSet.s != nil {
		readFixtureSet.s.Close()
	}
}

// walk runs body on GOMAXPROCS goroutines (see runParallel), each calling
// op with consecutive indexes of the shuffled order from its own starting
// point, wrapping around at benchN.
func walk(b *testing.B, op func(i int)) {
	runParallel(b, func(pb *testing.PB) {
		i := startAt(benchN)
		for pb.Next() {
			op(i)
			if i++; i == benchN {
				i = 0
			}
		}
	})
}

// sink keeps results alive so the compiler cannot drop a lookup.
var sink atomic.Int64

// BenchmarkGetHit looks up present keys: raw-load is the map's Load;
// raw-shape is the read floor of the store's shape (see shapeMaps); get
// is Store.Get (a fresh slice per call), append is AppendValues into a
// reused buffer (one per goroutine), contains is Contains of the key's
// value, count is Count.
func BenchmarkGetHit(b *testing.B) {
	f := loadReadFixture(b)
	m := rawMap(f.pairs)
	b.Run("raw-load", func(b *testing.B) {
		walk(b, func(i int) {
			if v, _ := m.Load(f.shuffled[i].Key); v[0] == 0 && v[1] == 0 {
				sink.Add(1)
			}
		})
	})
	m = nil // collected before the store's runs start
	sm := newShapeMaps(f.pairs)
	b.Run("raw-shape", func(b *testing.B) {
		walk(b, func(i int) {
			if p := sm.load(f.shuffled[i].Key); p == nil || p.Value[0] == 0 && p.Value[1] == 0 {
				sink.Add(1)
			}
		})
	})
	sm = nil
	b.Run("get", func(b *testing.B) {
		walk(b, func(i int) {
			if len(f.s.Get(f.shuffled[i].Key)) != 1 {
				sink.Add(1)
			}
		})
	})
	b.Run("append", func(b *testing.B) {
		runParallel(b, func(pb *testing.PB) {
			i := startAt(benchN)
			buf := make([]cid.CID, 0, 8)
			for pb.Next() {
				buf = f.s.AppendValues(buf[:0], f.shuffled[i].Key)
				if i++; i == benchN {
					i = 0
				}
			}
			sink.Add(int64(len(buf)))
		})
	})
	b.Run("contains", func(b *testing.B) {
		walk(b, func(i int) {
			if !f.s.Contains(f.shuffled[i].Key, f.shuffled[i].Value) {
				sink.Add(1)
			}
		})
	})
	b.Run("count", func(b *testing.B) {
		walk(b, func(i int) {
			if f.s.Count(f.shuffled[i].Key) != 1 {
				sink.Add(1)
			}
		})
	})
}

// BenchmarkGetMiss looks up keys that are absent: the map's Load against
// AppendValues into a reused buffer.
func BenchmarkGetMiss(b *testing.B) {
	f := loadReadFixture(b)
	m := rawMap(f.pairs)
	b.Run("raw-load", func(b *testing.B) {
		walk(b, func(i int) {
			if _, ok := m.Load(f.absent[i]); ok {
				sink.Add(1)
			}
		})
	})
	m = nil
	b.Run("append", func(b *testing.B) {
		runParallel(b, func(pb *testing.PB) {
			i := startAt(benchN)
			buf := make([]cid.CID, 0, 8)
			for pb.Next() {
				buf = f.s.AppendValues(buf[:0], f.absent[i])
				if i++; i == benchN {
					i = 0
				}
			}
			sink.Add(int64(len(buf)))
		})
	})
}

// shapeMaps is what a read must go through in the store's shape, without
// the rest of the store: DefaultShards() maps keyed by the key's seeded
// hash (the top bits pick the map), each entry pointing to a record of
// key and value carved from a slab, which a B-tree would share. A hit
// costs the map's bucket, its entry, then the record: one dependent cache
// miss more than raw-load, whose entry holds key and value.
type shapeMaps struct {
	seed  uint64
	shift uint
	maps  []*xsync.MapOf[uint64, *Pair]
}

func newShapeMaps(pairs []Pair) *shapeMaps {
	n := DefaultShards()
	sm := &shapeMaps{seed: rand.Uint64(), shift: uint(64 - bits.TrailingZeros(uint(n))), maps: make([]*xsync.MapOf[uint64, *Pair], n)}
	slabs := make([][]Pair, n)
	for i := range sm.maps {
		sm.maps[i] = xsync.NewMapOfWithHasher[uint64, *Pair](func(h, _ uint64) uint64 { return h })
	}
	for _, p := range pairs {
		h := p.Key.Hash(sm.seed)
		i := h >> sm.shift
		if len(slabs[i]) == 0 {
			slabs[i] = make([]Pair, 1024)
		}
		r := &slabs[i][0]
		slabs[i] = slabs[i][1:]
		*r = p
		sm.maps[i].Store(h, r)
	}
	return sm
}

func (sm *shapeMaps) load(k cid.CID) *Pair {
	h := k.Hash(sm.seed)
	if r, ok := sm.maps[h>>sm.shift].Load(h); ok && r.Key == k {
		return r
	}
	return nil
}

// claimer hands out indexes in blocks, so that parallel goroutines taking
// fresh keys do not share a cache line per operation.
type claimer struct{ next atomic.Int64 }

const claimBlock = 1024

func (c *claimer) claim() (from, to int) {
	to = int(c.next.Add(claimBlock))
	return to - claimBlock, to
}

// claimEach runs op on GOMAXPROCS goroutines (see runParallel), each
// calling it with indexes claimed in blocks from 0 up, b.N calls in all;
// the caller provides claimBlock*GOMAXPROCS indexes beyond b.N.
func claimEach(b *testing.B, op func(i int)) {
	var c claimer
	runParallel(b, func(pb *testing.PB) {
		i, end := c.claim()
		for pb.Next() {
			if i == end {
				i, end = c.claim()
			}
			op(i)
			i++
		}
	})
}

// BenchmarkInsertNew inserts b.N new keys (one value each) into an empty
// store, against Store of new keys into an empty map: both grow with b.N,
// so run it with a fixed count (-benchtime 1000000x). The keys are made
// before the timer starts.
//
// Two more baselines measure the floor of the store's shape, a map plus a
// google/btree key index per shard: index is the index insert alone (one
// item of a 64-bit key prefix and a pointer, as the shard's index holds,
// into one of DefaultShards() B-trees of the shard's degree, each behind
// its own mutex, picked by the key's hash); raw-store+index is the map's
// Store followed by that index insert.
func BenchmarkInsertNew(b *testing.B) {
	fresh := func(n int) []Pair {
		ps := make([]Pair, n+claimBlock*runtime.GOMAXPROCS(0))
		for i := range ps {
			ps[i] = benchPair(uint64(i) + 1<<44)
		}
		return ps
	}
	insert := func(b *testing.B, put func(Pair)) {
		ps := fresh(b.N)
		claimEach(b, func(i int) { put(ps[i]) })
	}
	b.Run("raw-store", func(b *testing.B) {
		m := xsync.NewMapOf[[32]byte, [32]byte]()
		insert(b, func(p Pair) { m.Store(p.Key, p.Value) })
	})
	b.Run("index", func(b *testing.B) {
		ix := newBenchIndex()
		insert(b, ix.insert)
	})
	b.Run("raw-store+index", func(b *testing.B) {
		m := xsync.NewMapOf[[32]byte, [32]byte]()
		ix := newBenchIndex()
		insert(b, func(p Pair) {
			m.Store(p.Key, p.Value)
			ix.insert(p)
		})
	})
	b.Run("insert", func(b *testing.B) {
		s := benchStore(b, nil)
		defer s.Close()
		insert(b, func(p Pair) {
			if err := s.Insert(p.Key, p.Value); err != nil {
				b.Error(err)
			}
		})
	})
}

// benchIndex is the key index of the store's shape without the rest of
// a shard: one google/btree per shard of items a shard's index holds (the
// key's first 64 bits and a pointer), each behind its own mutex.
type benchIndex struct {
	seed  uint64
	shift uint
	trees []benchTree
}

type benchTree struct {
	mu   sync.Mutex
	t    *btree.BTreeG[benchItem]
	slab []Pair  // where items point, carved as a shard carves records
	next int     // the next slab's length: 16 doubling to 1024
	_    [8]byte // a cache line each
}

type benchItem struct {
	hi uint64
	p  *Pair
}

func newBenchIndex() *benchIndex {
	n := DefaultShards()
	ix := &benchIndex{seed: rand.Uint64(), shift: uint(64 - bits.TrailingZeros(uint(n))), trees: make([]benchTree, n)}
	for i := range ix.trees {
		ix.trees[i].t = btree.NewG(64, func(a, b benchItem) bool {
			if a.hi != b.hi {
				return a.hi < b.hi
			}
			return cid.Less(a.p.Key, b.p.Key)
		})
	}
	return ix
}

func (ix *benchIndex) insert(p Pair) {
	t := &ix.trees[p.Key.Hash(ix.seed)>>ix.shift]
	hi, _, _, _ := p.Key.Words()
	t.mu.Lock()
	if len(t.slab) == 0 {
		t.next = min(max(2*t.next, 16), 1024)
		t.slab = make([]Pair, t.next)
	}
	t.slab[0] = p
	t.t.ReplaceOrInsert(benchItem{hi, &t.slab[0]})
	t.slab = t.slab[1:]
	t.mu.Unlock()
}

// BenchmarkInsertDuplicate inserts pairs that are already present (no-ops)
// into the preloaded store, in shuffled order.
func BenchmarkInsertDuplicate(b *testing.B) {
	f := loadReadFixture(b)
	walk(b, func(i int) {
		if err := f.s.Insert(f.shuffled[i].Key, f.shuffled[i].Value); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkDelete deletes b.N present pairs (each key's only value, so
// the key goes) from a store preloaded with them, in shuffled order.
func BenchmarkDelete(b *testing.B) {
	ps := make([]Pair, b.N+claimBlock*runtime.GOMAXPROCS(0))
	for i := range ps {
		ps[i] = benchPair(uint64(i) + 1<<45)
	}
	s := benchStore(b, ps)
	defer s.Close()
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	claimEach(b, func(i int) {
		if err := s.Delete(ps[i].Key, ps[i].Value); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkMixed90 is 90% reads of present keys and 10% writes over the
// preloaded data set, in shuffled order: raw is the map's Load and Store
// (replacing the value); store is AppendValues into a reused buffer and
// Insert of a new second value to the key.
func BenchmarkMixed90(b *testing.B) {
	d := loadBenchData()
	m := rawMap(d.pairs)
	b.Run("raw", func(b *testing.B) {
		runParallel(b, func(pb *testing.PB) {
			i, n := startAt(benchN), 0
			for pb.Next() {
				p := d.shuffled[i]
				if i%10 == 0 {
					p.Value[31] ^= 1
					m.Store(p.Key, p.Value)
				} else {
					v, _ := m.Load(p.Key)
					n += int(v[0])
				}
				if i++; i == benchN {
					i = 0
				}
			}
			_ = n
		})
	})
	m = nil
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, d.pairs)
		defer s.Close()
		runParallel(b, func(pb *testing.PB) {
			i := startAt(benchN)
			buf := make([]cid.CID, 0, 64)
			for pb.Next() {
				p := d.shuffled[i]
				if i%10 == 0 {
					p.Value[31] ^= 1
					if err := s.Insert(p.Key, p.Value); err != nil {
						b.Error(err)
					}
				} else {
					buf = s.AppendValues(buf[:0], p.Key)
				}
				if i++; i == benchN {
					i = 0
				}
			}
		})
	})
}

// BenchmarkMemory fills a store, or a raw MapOf[[32]byte, [32]byte] for
// one-value shapes, with random keys from one goroutine, and reports
//
//   - heapB/pair: live heap growth after a collection, per pair;
//   - rssB/pair: resident set growth, per pair, measured from a baseline
//     taken after the runtime returned freed memory to the OS (so memory
//     freed by an earlier benchmark in the process is not reused unseen);
//   - ns/pair: time to insert, per pair (the cost of growing: map
//     doubling, collections, first-touch page faults).
//
// It measures, it does not assert. The 10M shape is the memory target:
//
//	go test ./store -run '^$' -bench 'Memory/keys=10000000' -benchtime 1x -count 3
func BenchmarkMemory(b *testing.B) {
	for _, shape := range []struct{ keys, vals int }{{1_000_000, 1}, {10_000_000, 1}, {100_000, 10}} {
		name := fmt.Sprintf("keys=%d/values=%d", shape.keys, shape.vals)
		b.Run(name+"/store", func(b *testing.B) {
			for b.Loop() {
				var s *Store
				measureGrowth(b, shape.keys*shape.vals, func() {
					var err error
					if s, err = Open("", Options{InMemory: true}); err != nil {
						b.Fatal(err)
					}
					for k := 0; k < shape.keys; k++ {
						key := benchKey(uint64(k))
						for v := 0; v < shape.vals; v++ {
							if err := s.Insert(key, benchKey(uint64(k*shape.vals+v)+1<<40)); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
				if s.Pairs() != shape.keys*shape.vals {
					b.Fatalf("%d pairs, want %d", s.Pairs(), shape.keys*shape.vals)
				}
				s.Close()
			}
		})
		if shape.vals != 1 {
			continue
		}
		b.Run(name+"/raw", func(b *testing.B) {
			for b.Loop() {
				var m *xsync.MapOf[[32]byte, [32]byte]
				measureGrowth(b, shape.keys, func() {
					m = xsync.NewMapOf[[32]byte, [32]byte]()
					for k := 0; k < shape.keys; k++ {
						m.Store(benchKey(uint64(k)), benchKey(uint64(k)+1<<40))
					}
				})
				runtime.KeepAlive(m)
			}
		})
	}
}

// measureGrowth runs fill and reports the heap and resident-set growth and
// the time it took, per pair.
func measureGrowth(b *testing.B, pairs int, fill func()) {
	debug.FreeOSMemory()
	heap0, rss0 := heapInUse(), rssBytes(b)
	start := time.Now()
	fill()
	elapsed := time.Since(start)
	rss1 := rssBytes(b)
	heap1 := heapInUse()
	b.ReportMetric(float64(heap1-heap0)/float64(pairs), "heapB/pair")
	b.ReportMetric(float64(rss1-rss0)/float64(pairs), "rssB/pair")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(pairs), "ns/pair")
}

// rssBytes returns the process's resident set size (Linux: the second
// field of /proc/self/statm, in pages); 0 where that file does not exist.
func rssBytes(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		b.Fatalf("unexpected /proc/self/statm: %q", data)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return pages * uint64(os.Getpagesize())
}

// existingKeys is the number of keys BenchmarkInsertExisting preloads,
// each with existingMembers values: the shape redis-benchmark's SADD with
// -r 100000 leaves (scripts/bench-resp).
const (
	existingKeys    = 100_000
	existingMembers = 10
)

// BenchmarkInsertExisting adds a new value to an existing key whose set
// holds a few values: existingKeys keys of existingMembers values are
// preloaded, then b.N inserts each add a value not yet present to a key
// picked at random (so the sets grow by b.N/existingKeys values on
// average; run it with a fixed count, -benchtime 1000000x, to compare
// runs). Keys come in two shapes: random (benchKey) and seq, the
// redis-benchmark shape E(1,0,0,n) whose keys differ only in their last
// word, with values E(2,0,0,n). insert is Store.Insert; batch16 applies
// the same inserts 16 at a time with ApplyPairs, as the RESP endpoint
// applies a pipeline of 16 SADDs (b.N counts inserts). raw-store is the
// same-run baseline: a raw xsync.MapOf[[32]byte, [32]byte] Store of the
// same pairs into a map preloaded with the keys (one value each).
func BenchmarkInsertExisting(b *testing.B) {
	shapes := []struct {
		name     string
		key, val func(i uint64) cid.CID
	}{
		{"random", benchKey, func(i uint64) cid.CID { return benchKey(i + 1<<46) }},
		{"seq", func(i uint64) cid.CID { return cid.FromWords(1, 0, 0, i+1) }, func(i uint64) cid.CID { return cid.FromWords(2, 0, 0, i+1) }},
	}
	for _, sh := range shapes {
		preload := make([]Pair, 0, existingKeys*existingMembers)
		for m := range uint64(existingMembers) {
			for k := range uint64(existingKeys) {
				preload = append(preload, Pair{sh.key(k), sh.val(m*existingKeys + k)})
			}
		}
		// ops returns n inserts of new values into random existing keys.
		ops := func(n int) []Pair {
			rng := rand.New(rand.NewPCG(3, 4))
			ps := make([]Pair, n+claimBlock*runtime.GOMAXPROCS(0))
			for j := range ps {
				ps[j] = Pair{sh.key(rng.Uint64N(existingKeys)), sh.val(uint64(existingKeys*existingMembers + j))}
			}
			return ps
		}
		b.Run(sh.name+"/raw-store", func(b *testing.B) {
			m := rawMap(preload[:existingKeys])
			ps := ops(b.N)
			claimEach(b, func(i int) { m.Store(ps[i].Key, ps[i].Value) })
		})
		b.Run(sh.name+"/insert", func(b *testing.B) {
			s := benchStore(b, preload)
			defer s.Close()
			ps := ops(b.N)
			claimEach(b, func(i int) {
				if err := s.Insert(ps[i].Key, ps[i].Value); err != nil {
					b.Error(err)
				}
			})
		})
		b.Run(sh.name+"/batch16", func(b *testing.B) {
			s := benchStore(b, preload)
			defer s.Close()
			ps := ops(b.N + 16)
			var c claimer
			runParallel(b, func(pb *testing.PB) {
				var batch [16]PairOp
				var changed [16]bool
				i, end := c.claim()
				for {
					n := 0
					for n < len(batch) && pb.Next() {
						if i == end {
							i, end = c.claim()
						}
						batch[n] = PairOp{Kind: OpInsert, Key: ps[i].Key, Value: ps[i].Value}
						n++
						i++
					}
					if n == 0 {
						return
					}
					if _, err := s.ApplyPairs(batch[:n], changed[:n]); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
