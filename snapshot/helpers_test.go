package snapshot

import (
	"bytes"
	"context"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cidstore/cidstore/cid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// entry is one key and its value set as a test sees it.
type entry struct {
	key  cid.CID
	vals []cid.CID
}

// dataset is the content of a store: one ascending list of entries per
// partition. Keys are distinct across partitions.
type dataset [][]entry

// parts returns one Part per partition. Each Part copies the values into a
// reused buffer, as the store's producers may, so the reader of vals must
// not keep it.
func (d dataset) parts() []Part {
	ps := make([]Part, len(d))
	for i, es := range d {
		ps[i] = func(yield func(cid.CID, []cid.CID) bool) {
			var buf []cid.CID
			for _, e := range es {
				buf = append(buf[:0], e.vals...)
				if !yield(e.key, buf) {
					return
				}
			}
		}
	}
	return ps
}

// counts returns the distinct non-empty keys and the pairs of d.
func (d dataset) counts() (keys, pairs int64) {
	for _, es := range d {
		for _, e := range es {
			if len(e.vals) > 0 {
				keys++
				pairs += int64(len(e.vals))
			}
		}
	}
	return keys, pairs
}

// randCID returns a random CID.
func randCID(r *rand.Rand) cid.CID {
	return cid.FromWords(r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
}

// sortedCIDs returns n distinct random CIDs in ascending order. With seq,
// they are consecutive integers from base, which compress well.
func sortedCIDs(r *rand.Rand, n int, seq bool, base uint64) []cid.CID {
	out := make([]cid.CID, n)
	for i := range out {
		if seq {
			out[i] = cid.FromWords(0, 0, base, uint64(i))
		} else {
			out[i] = randCID(r)
		}
	}
	slices.SortFunc(out, cid.Compare)
	return slices.CompactFunc(out, func(a, b cid.CID) bool { return a == b })
}

// genDataset builds parts partitions of keys random keys each; value set
// sizes come from valsFor(key index).
func genDataset(seed uint64, parts, keys int, valsFor func(i int) int, seq bool) dataset {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d := make(dataset, parts)
	for p := range d {
		ks := sortedCIDs(r, keys, seq, uint64(p)<<32)
		for i, k := range ks {
			if seq {
				k = cid.FromWords(uint64(p), 0, 0, uint64(i)) // distinct across parts
			}
			d[p] = append(d[p], entry{key: k, vals: sortedCIDs(r, valsFor(i), seq, uint64(i))})
		}
	}
	return d
}

// collector records fn's calls. It is safe for concurrent use.
type collector struct {
	mu  sync.Mutex
	got []entry
}

func (c *collector) fn(k cid.CID, vals []cid.CID) error {
	v := slices.Clone(vals)
	c.mu.Lock()
	c.got = append(c.got, entry{k, v})
	c.mu.Unlock()
	return nil
}

// check compares what c collected with d. With ordered, the calls of each
// partition must come in key order (any interleaving of partitions);
// otherwise only the pieces of each key must arrive in order. Split keys
// arrive as several calls; they are merged.
func (c *collector) check(t *testing.T, d dataset, ordered bool) {
	t.Helper()
	where := make(map[cid.CID]int)
	for p, es := range d {
		for _, e := range es {
			where[e.key] = p
		}
	}
	got := make([][]entry, len(d))
	pos := make(map[cid.CID]int) // key -> index in its partition's got
	for _, e := range c.got {
		p, ok := where[e.key]
		if !ok {
			t.Fatalf("unexpected key %s", e.key)
		}
		g := got[p]
		if n := len(g); n > 0 && g[n-1].key == e.key {
			g[n-1].vals = append(g[n-1].vals, e.vals...)
		} else if i, seen := pos[e.key]; seen && !ordered {
			g[i].vals = append(g[i].vals, e.vals...)
		} else {
			pos[e.key] = len(g)
			g = append(g, entry{e.key, e.vals})
		}
		got[p] = g
	}
	for p, es := range d {
		want := slices.DeleteFunc(slices.Clone(es), func(e entry) bool { return len(e.vals) == 0 })
		g := got[p]
		if !ordered {
			slices.SortFunc(g, func(a, b entry) int { return cid.Compare(a.key, b.key) })
		}
		if len(g) != len(want) {
			t.Fatalf("partition %d: got %d keys, want %d", p, len(g), len(want))
		}
		for i := range want {
			if g[i].key != want[i].key || !slices.Equal(g[i].vals, want[i].vals) {
				t.Fatalf("partition %d entry %d: got key %s with %d values, want %s with %d",
					p, i, g[i].key, len(g[i].vals), want[i].key, len(want[i].vals))
			}
		}
	}
}

// encode writes d to memory with blocks filled up to target bytes.
func encode(t testing.TB, d dataset, lsn uint64, target int) ([]byte, Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := write(context.Background(), &buf, Header{LSN: lsn, Created: time.Unix(0, 1234567890)}, d.parts(), target)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	if sum.Bytes != int64(buf.Len()) {
		t.Fatalf("Summary.Bytes = %d, wrote %d", sum.Bytes, buf.Len())
	}
	return buf.Bytes(), sum
}

// writeTemp stores data in a new file and returns its path.
func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), Name(1))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadBytes loads data as a file named name, from memory.
func loadBytes(data []byte, name string, parallelism int, fn func(cid.CID, []cid.CID) error) (Header, Summary, error) {
	return load(context.Background(), bytes.NewReader(data), int64(len(data)), name, parallelism, pairsOnly(fn))
}

func crc32Update(c uint32, b []byte) uint32 { return crc32.Update(c, crcTable, b) }

// one is a value count: one value for every key.
func one(int) int { return 1 }

// joinByKey merges entries into each key's values, in the order of the
// entries (a key may appear in several partitions and a split key in
// several calls).
func joinByKey(es []entry) map[cid.CID][]cid.CID {
	m := make(map[cid.CID][]cid.CID)
	for _, e := range es {
		m[e.key] = append(m[e.key], e.vals...)
	}
	return m
}

// byKey is joinByKey with each key's values sorted.
func byKey(es []entry) map[cid.CID][]cid.CID {
	m := joinByKey(es)
	for _, v := range m {
		slices.SortFunc(v, cid.Compare)
	}
	return m
}

// sameEntries reports whether a and b hold the same keys with the same
// values in the same order.
func sameEntries(a, b map[cid.CID][]cid.CID) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}
