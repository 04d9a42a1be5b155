package snapshot

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

// tripleData returns a partition of triple entries: keys ascending, each
// with n values of two CIDs, ascending as pairs. seq values compress.
func tripleData(r *rand.Rand, keys, n int) []entry {
	ks := sortedCIDs(r, keys, false, 0)
	es := make([]entry, len(ks))
	for i, k := range ks {
		firsts := sortedCIDs(r, n, true, uint64(i))
		var vals []cid.CID
		for _, f := range firsts {
			vals = append(vals, f, randCID(r))
		}
		es[i] = entry{k, vals}
	}
	return es
}

// collectEntries gathers what a reader delivers, per kind, merging split
// value sets.
type collectEntries struct {
	mu             sync.Mutex
	pairs, triples map[cid.CID][]cid.CID
}

func (c *collectEntries) entries() Entries {
	c.pairs, c.triples = map[cid.CID][]cid.CID{}, map[cid.CID][]cid.CID{}
	add := func(m map[cid.CID][]cid.CID) func(cid.CID, []cid.CID) error {
		return func(k cid.CID, v []cid.CID) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			m[k] = append(m[k], v...)
			return nil
		}
	}
	return Entries{Pairs: add(c.pairs), Triples: add(c.triples)}
}

func (c *collectEntries) check(t *testing.T, d dataset, triples int) {
	t.Helper()
	for i, es := range d {
		m := c.pairs
		if i >= len(d)-triples {
			m = c.triples
		}
		for _, e := range es {
			if !slices.Equal(m[e.key], e.vals) {
				t.Fatalf("part %d key %v: got %d CIDs, want %d", i, e.key, len(m[e.key]), len(e.vals))
			}
		}
	}
}

// A snapshot with triple partitions round-trips through the file and the
// stream readers, split values included, and is written as version 2; a
// snapshot without them stays version 1.
func TestTriplePartitions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d := dataset{
		{{randCID(r), sortedCIDs(r, 3, false, 0)}},
		tripleData(r, 50, 3),
		append(tripleData(r, 2, 1), entry{cid.FromWords(^uint64(0), 0, 0, 0), tripleData(r, 1, 3000)[0].vals}),
	}
	slices.SortFunc(d[2], func(a, b entry) int { return cid.Compare(a.key, b.key) })
	var buf bytes.Buffer
	sum, err := write(context.Background(), &buf, Header{LSN: 3, Triples: 2}, d.parts(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if v := le.Uint16(buf.Bytes()[8:]); v != Version {
		t.Fatalf("version %d, want %d", v, Version)
	}
	if sum.Entries != 1 || sum.Pairs != 3 || sum.TripleKeys != 53 || sum.Triples != 50*3+2+3000 {
		t.Fatalf("summary %+v", sum)
	}
	var c collectEntries
	_, got, err := load(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "x", 2, c.entries())
	if err != nil || got != sum {
		t.Fatalf("load: %v, summary %+v want %+v", err, got, sum)
	}
	c.check(t, d, 2)
	var c2 collectEntries
	if _, got, err = ReadEntries(context.Background(), bytes.NewReader(buf.Bytes()), c2.entries()); err != nil || got != sum {
		t.Fatalf("read: %v, summary %+v", err, got)
	}
	c2.check(t, d, 2)
	// The pair-only reader checks the triples and skips them.
	n := 0
	if _, _, err := Read(context.Background(), bytes.NewReader(buf.Bytes()), func(cid.CID, []cid.CID) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("pair-only read: %v, %d entries", err, n)
	}

	// The same blocks under a version-1 header are corrupt: that version
	// holds no triples, and a reader of it would drop them unseen.
	v1 := bytes.Clone(buf.Bytes())
	le.PutUint16(v1[8:], VersionPairs)
	fixHeader(v1)
	if _, _, err := load(context.Background(), bytes.NewReader(v1), int64(len(v1)), "x", 2, c.entries()); !errors.Is(err, ErrCorrupt) ||
		!strings.Contains(err.Error(), "pairs-only version") {
		t.Fatalf("load of triples under version 1: %v", err)
	}
	if _, _, err := ReadEntries(context.Background(), bytes.NewReader(v1), c2.entries()); !errors.Is(err, ErrCorrupt) ||
		!strings.Contains(err.Error(), "pairs-only version") {
		t.Fatalf("read of triples under version 1: %v", err)
	}

	buf.Reset()
	if _, err := Write(context.Background(), &buf, Header{}, d[:1].parts()); err != nil {
		t.Fatal(err)
	}
	if v := le.Uint16(buf.Bytes()[8:]); v != VersionPairs {
		t.Fatalf("pair-only snapshot has version %d", v)
	}
}

// The writer rejects a triple partition whose values are not whole pairs
// or not ascending; the reader rejects a partition that mixes kinds.
func TestTriplePartitionErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	k := randCID(r)
	bad := []dataset{
		{{{k, []cid.CID{randCID(r)}}}},
		{{{k, []cid.CID{cid.FromWords(2, 0, 0, 0), randCID(r), cid.FromWords(1, 0, 0, 0), randCID(r)}}}},
	}
	for i, d := range bad {
		if _, err := Write(context.Background(), &bytes.Buffer{}, Header{Triples: 1}, d.parts()); err == nil {
			t.Fatalf("case %d: Write accepted a malformed triple partition", i)
		}
	}
	// A pair block relabelled as the continuation of a triple partition.
	prev := chainState{triples: true, valid: true}
	raw := append(append(k[:0:0], k[:]...), 1)
	raw = append(raw, k[:]...)
	var first cid.CID
	if reason := check(raw, blockHeader{entries: 1, pairs: 1}, &prev, &first); reason == "" {
		t.Fatal("a partition mixing pair and triple blocks was accepted")
	}
}

// A partition whose runs are pair blocks and then triple blocks is
// rejected by the file reader, which decodes the runs apart, as by the
// stream reader.
func TestPartitionMixingKindsAcrossRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	d := dataset{
		{{cid.FromWords(1, 0, 0, 0), []cid.CID{randCID(r)}}},
		{{cid.FromWords(2, 0, 0, 0), []cid.CID{randCID(r), randCID(r)}}},
	}
	var buf bytes.Buffer
	if _, err := Write(context.Background(), &buf, Header{Triples: 1}, d.parts()); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	_, ft := layout(t, data)
	// Partitions are encoded in parallel: either block may come first.
	tri := slices.IndexFunc(ft.index, func(e indexEntry) bool { return e.flags&flagTriples != 0 })
	if len(ft.index) != 2 || tri < 0 || ft.index[1-tri].flags&flagTriples != 0 {
		t.Fatalf("index %+v: want a pair block and a triple block", ft.index)
	}
	// Relabel the triple block as a second run of partition 0.
	off := int(ft.index[tri].offset)
	le.PutUint32(data[off+4:], 0)
	fixBlock(data, off)
	le.PutUint32(data[indexAt(data, tri)+12:], 0)
	fixFooter(data)
	var c collectEntries
	if _, _, err := load(context.Background(), bytes.NewReader(data), int64(len(data)), "x", 2, c.entries()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("load: %v, want ErrCorrupt", err)
	}
	if _, _, err := ReadEntries(context.Background(), bytes.NewReader(data), c.entries()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read: %v, want ErrCorrupt", err)
	}
}
