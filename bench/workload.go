package bench

import (
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Distribution is how operations pick keys.
type Distribution int

const (
	// Uniform picks every key with the same probability.
	Uniform Distribution = iota
	// Zipf picks key rank i with probability proportional to 1/(1+i)^s
	// (Workload.ZipfS). Ranks map to keys through Key, so hot keys spread
	// over shards like any other keys.
	Zipf
)

func (d Distribution) String() string {
	switch d {
	case Uniform:
		return "uniform"
	case Zipf:
		return "zipf"
	}
	return fmt.Sprintf("Distribution(%d)", int(d))
}

// ParseDistribution parses "uniform" or "zipf".
func ParseDistribution(s string) (Distribution, error) {
	switch s {
	case "uniform", "":
		return Uniform, nil
	case "zipf", "zipfian":
		return Zipf, nil
	}
	return 0, fmt.Errorf("bench: unknown key distribution %q (want uniform or zipf)", s)
}

// Workload describes one benchmark run. The zero value of every field
// except ReadPct has a default; see normalize.
type Workload struct {
	Name     string // label for reports, e.g. "mixed"
	ModeName string // durability label for reports; "" derives it from Dir and Sync (see Mode)

	Shards     int           // store shard count (0: the store's default)
	Goroutines int           // concurrent workers (0: 2 x GOMAXPROCS)
	Duration   time.Duration // how long to run (0: 1s); ignored when Ops > 0
	Ops        int64         // total operations to run, split over the goroutines (0: run for Duration)

	ReadPct   int // percentage of operations that are reads, 0..100
	DeletePct int // percentage of operations that are deletes; the rest are inserts

	KeySpace     uint64       // distinct keys (0: 1<<16)
	Dist         Distribution // key distribution (default Uniform)
	ZipfS        float64      // Zipf exponent, > 1 (0: 1.1)
	ValuesPerKey int          // values per key after the preload (0: 4)
	Preload      bool         // insert ValuesPerKey values for every key before measuring
	BatchSize    int          // pairs per insert call; > 1 uses InsertBatch (0: 1)

	Dir  string         // CIDStore directory; "" for an in-memory store
	Sync store.SyncMode // CIDStore sync policy when Dir != ""

	// Target opens the store under test; nil opens a CIDStore as Shards,
	// Dir and Sync say.
	Target Opener

	Seed uint64 // varies the random streams (0 is a valid seed)
}

// Mode names the durability of the workload's CIDStore target: "memory"
// or the sync policy ("always", "interval", "never").
func (w Workload) Mode() string {
	if w.Dir == "" {
		return "memory"
	}
	return w.Sync.String()
}

// StoreOptions are the options of the workload's CIDStore target: Shards,
// and Sync over the default configuration.
func (w Workload) StoreOptions() store.Options {
	c := store.DefaultConfig()
	c.Sync = w.Sync
	return store.Options{Shards: w.Shards, Config: &c}
}

// InsertPct is the percentage of operations that are inserts.
func (w Workload) InsertPct() int { return 100 - w.ReadPct - w.DeletePct }

func (w Workload) normalize() (Workload, error) {
	if w.Goroutines == 0 {
		w.Goroutines = 2 * runtime.GOMAXPROCS(0)
	}
	if w.Duration == 0 {
		w.Duration = time.Second
	}
	if w.KeySpace == 0 {
		w.KeySpace = 1 << 16
	}
	if w.ZipfS == 0 {
		w.ZipfS = 1.1
	}
	if w.ValuesPerKey == 0 {
		w.ValuesPerKey = 4
	}
	if w.BatchSize == 0 {
		w.BatchSize = 1
	}
	switch {
	case w.Goroutines < 0:
		return w, errors.New("bench: negative goroutine count")
	case w.Duration < 0:
		return w, errors.New("bench: negative duration")
	case w.Ops < 0:
		return w, errors.New("bench: negative operation count")
	case w.ReadPct < 0 || w.ReadPct > 100:
		return w, fmt.Errorf("bench: read percentage %d outside 0..100", w.ReadPct)
	case w.DeletePct < 0 || w.ReadPct+w.DeletePct > 100:
		return w, fmt.Errorf("bench: delete percentage %d outside 0..%d", w.DeletePct, 100-w.ReadPct)
	case w.Dist != Uniform && w.Dist != Zipf:
		return w, fmt.Errorf("bench: unknown key distribution %d", int(w.Dist))
	case w.Dist == Zipf && !(w.ZipfS > 1):
		return w, fmt.Errorf("bench: Zipf exponent %v must be > 1", w.ZipfS)
	case w.ValuesPerKey < 0:
		return w, errors.New("bench: negative values per key")
	case w.BatchSize < 0:
		return w, errors.New("bench: negative batch size")
	}
	return w, nil
}

// Key returns the benchmark's i-th key: random-looking, as real CIDs are.
func Key(i uint64) cid.CID {
	return cid.FromWords(splitmix(i), splitmix(i^0x9e3779b97f4a7c15), splitmix(i+7), splitmix(^i))
}

// Value returns value j of key i: random-looking, distinct from every key
// and from the other values of key i.
func Value(i, j uint64) cid.CID {
	x := splitmix(i*0xff51afd7ed558ccd + j + 0x5bd1e995)
	return cid.FromWords(x, splitmix(x^j), splitmix(x+i), splitmix(^x)|1)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rng is a per-goroutine splitmix64 stream.
type rng struct{ s uint64 }

func (r *rng) next() uint64 { r.s += 0x9e3779b97f4a7c15; return splitmix(r.s) }

// Uint64 makes rng a math/rand Source64 so rand.Zipf can draw from it.
func (r *rng) Uint64() uint64  { return r.next() }
func (r *rng) Int63() int64    { return int64(r.next() >> 1) }
func (r *rng) Seed(seed int64) { r.s = uint64(seed) }

// keyGen draws key indexes in [0, KeySpace) as the workload's
// distribution says.
type keyGen struct {
	r    *rng
	n    uint64
	zipf *rand.Zipf
}

func newKeyGen(w Workload, r *rng) *keyGen {
	g := &keyGen{r: r, n: w.KeySpace}
	if w.Dist == Zipf {
		g.zipf = rand.NewZipf(rand.New(r), w.ZipfS, 1, w.KeySpace-1)
	}
	return g
}

func (g *keyGen) next() uint64 {
	if g.zipf != nil {
		return g.zipf.Uint64()
	}
	return g.r.next() % g.n
}
