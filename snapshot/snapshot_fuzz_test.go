package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/internal/fuzztest"
	"github.com/cidstore/cidstore/vfs"
)

// snapAllocSlack bounds what a decoder may allocate beyond a multiple of
// its input: per decoding goroutine a frame, an uncompressed block and its
// values (MaxBlockSize each) plus the zstd decoder's window and buffers.
// Two goroutines (LoadFile runs with parallelism 2 here) and room to spare.
const snapAllocSlack = 64 << 20

// partitions decodes a snapshot that LoadFile accepted block by block, in
// file order, and returns each partition's entries with split keys joined.
func partitions(t *testing.T, data []byte) dataset {
	t.Helper()
	r := bytes.NewReader(data)
	h, err := readHeader(r, int64(len(data)), "")
	if err != nil {
		t.Fatalf("readHeader of an accepted snapshot: %v", err)
	}
	ft, err := readFooter(r, int64(len(data)), "", h)
	if err != nil {
		t.Fatalf("readFooter of an accepted snapshot: %v", err)
	}
	d, err := newBlockDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	parts := make(dataset, h.Parts)
	states := make(map[uint32]*chainState)
	for i, e := range ft.index {
		frame := data[e.offset : e.offset+BlockHeaderSize+uint64(e.stored)]
		bh, reason := parseBlockHeader(frame, h.Parts)
		if reason != "" {
			t.Fatalf("block %d: %s", i, reason)
		}
		raw, reason := d.decode(bh, frame)
		if reason != "" {
			t.Fatalf("block %d: %s", i, reason)
		}
		st := states[e.part]
		if st == nil {
			st = new(chainState)
			states[e.part] = st
		}
		var first cid.CID
		cont := bh.flags&flagCont != 0
		reason, err := d.walk(raw, bh, st, &first, pairsOnly(func(k cid.CID, v []cid.CID) error {
			p := parts[e.part]
			if cont && len(p) > 0 && p[len(p)-1].key == k {
				p[len(p)-1].vals = append(p[len(p)-1].vals, v...)
				cont = false
				return nil
			}
			parts[e.part] = append(p, entry{k, slices.Clone(v)})
			return nil
		}))
		if reason != "" || err != nil {
			t.Fatalf("block %d: %s %v", i, reason, err)
		}
	}
	return parts
}

// FuzzSnapshotDecode feeds arbitrary bytes to LoadFile (through a real
// file, two decoding goroutines) and to Read. Neither may panic or allocate
// more than a constant plus a multiple of the input; each must succeed or
// fail with ErrCorrupt, and they must agree. On success every partition's
// keys, and every key's values, strictly ascend (split keys joined); both
// decoders deliver exactly the partitions' pairs; and writing the decoded
// partitions again with Write, one Part per original partition, gives a
// snapshot that decodes to the same header, counts and entries.
func FuzzSnapshotDecode(f *testing.F) {
	for _, d := range []dataset{
		nil,
		make(dataset, 3),
		genDataset(51, 1, 5, func(i int) int { return 1 + i%3 }, false),
		genDataset(52, 3, 4, func(i int) int { return 1 + i*5 }, true),
		genDataset(53, 2, 2, func(i int) int { return 40 }, false),
	} {
		data, _ := encode(f, d, 7, 300)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), Name(1))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var (
			fileC, streamC collector
			h1, h2         Header
			s1, s2         Summary
			err1, err2     error
		)
		limit := snapAllocSlack + 8*uint64(len(data))
		if n := fuzztest.Allocated(func() {
			h1, s1, err1 = LoadFile(context.Background(), vfs.Default, path, 2, fileC.fn)
		}); n > limit {
			t.Fatalf("LoadFile of %d bytes allocated %d bytes (limit %d)", len(data), n, limit)
		}
		if n := fuzztest.Allocated(func() {
			h2, s2, err2 = Read(context.Background(), bytes.NewReader(data), streamC.fn)
		}); n > limit {
			t.Fatalf("Read of %d bytes allocated %d bytes (limit %d)", len(data), n, limit)
		}
		if err1 != nil && !errors.Is(err1, ErrCorrupt) {
			t.Fatalf("LoadFile: %v", err1)
		}
		if err2 != nil && !errors.Is(err2, ErrCorrupt) {
			t.Fatalf("Read: %v", err2)
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("LoadFile and Read disagree: %v / %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if h1 != h2 || s1 != s2 || s1.Bytes != int64(len(data)) {
			t.Fatalf("LoadFile %+v %+v, Read %+v %+v", h1, s1, h2, s2)
		}

		parts := partitions(t, data)
		var all []entry
		for p, es := range parts {
			for i, e := range es {
				if i > 0 && cid.Compare(es[i-1].key, e.key) >= 0 {
					t.Fatalf("partition %d: key %d not above the previous one", p, i)
				}
				if len(e.vals) == 0 || !slices.IsSortedFunc(e.vals, cid.Compare) ||
					len(slices.CompactFunc(slices.Clone(e.vals), func(a, b cid.CID) bool { return a == b })) != len(e.vals) {
					t.Fatalf("partition %d key %d: values not strictly ascending", p, i)
				}
			}
			all = append(all, es...)
		}
		keys, pairs := parts.counts()
		if keys != s1.Entries || pairs != s1.Pairs {
			t.Fatalf("partitions hold %d keys and %d pairs, summary %+v", keys, pairs, s1)
		}
		want := byKey(all)
		if !sameEntries(byKey(fileC.got), want) || !sameEntries(byKey(streamC.got), want) {
			t.Fatal("LoadFile or Read delivered other entries than the blocks hold")
		}

		// Re-encode one Part per original partition and decode again.
		var buf bytes.Buffer
		hw := Header{LSN: h1.LSN, Parts: h1.Parts, Created: h1.Created}
		sw, err := Write(context.Background(), &buf, hw, parts.parts())
		if err != nil {
			t.Fatalf("Write of decoded partitions: %v", err)
		}
		var again collector
		h3, s3, err := Read(context.Background(), bytes.NewReader(buf.Bytes()), again.fn)
		if err != nil {
			t.Fatalf("Read of the re-encoded snapshot: %v", err)
		}
		if h3.LSN != h1.LSN || h3.Parts != h1.Parts || !h3.Created.Equal(h1.Created) ||
			s3.Entries != s1.Entries || s3.Pairs != s1.Pairs || sw.Pairs != s1.Pairs {
			t.Fatalf("re-encoded %+v %+v, original %+v %+v", h3, s3, h1, s1)
		}
		if !sameEntries(byKey(again.got), want) {
			t.Fatal("re-encoded snapshot decodes to other entries")
		}
	})
}

// TestGenerateSnapshotCorpus rewrites testdata/fuzz/FuzzSnapshotDecode
// from files written by WriteFile (run with -gencorpus): empty, one and
// several partitions, split keys, compressible blocks.
func TestGenerateSnapshotCorpus(t *testing.T) {
	if !*fuzztest.Regenerate {
		t.Skip("run with -gencorpus to rewrite the seed corpus")
	}
	cases := []struct {
		name string
		d    dataset
	}{
		{"empty", make(dataset, 2)},
		{"one-part", genDataset(61, 1, 6, func(i int) int { return 1 + i }, false)},
		{"four-parts-compressible", genDataset(62, 4, 8, func(i int) int { return 1 + i*3 }, true)},
		{"split-key", genDataset(63, 2, 3, func(i int) int { return 30 }, false)},
	}
	for i, c := range cases {
		path := filepath.Join(t.TempDir(), Name(uint64(i+1)))
		h := Header{LSN: uint64(100 + i), Created: time.Unix(0, 1700000000000000000)}
		var err error
		if c.name == "split-key" {
			// A small block target splits value sets across blocks.
			var buf bytes.Buffer
			if _, err = write(context.Background(), &buf, h, c.d.parts(), 400); err == nil {
				err = os.WriteFile(path, buf.Bytes(), 0o600)
			}
		} else {
			_, err = WriteFile(context.Background(), vfs.Default, path, h, c.d.parts())
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fuzztest.WriteSeed(t, "FuzzSnapshotDecode", c.name, data)
	}
}
