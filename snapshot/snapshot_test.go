package snapshot

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/vfs"
)

// roundTripCases are the datasets every round-trip test covers. target is
// the writer's block size (0 means BlockTarget).
var roundTripCases = []struct {
	name       string
	data       func() dataset
	target     int
	minBlocks  int64
	compressed bool // expect RawBytes well above Bytes
}{
	{name: "empty no parts", data: func() dataset { return nil }},
	{name: "empty parts", data: func() dataset { return make(dataset, 3) }},
	{name: "small", data: func() dataset { return genDataset(1, 1, 10, func(i int) int { return 1 + i%3 }, false) }, minBlocks: 1},
	{name: "empty value sets skipped", data: func() dataset {
		d := genDataset(2, 2, 50, func(i int) int { return i % 3 }, false)
		return d
	}, minBlocks: 2},
	{name: "many keys multi block", data: func() dataset { return genDataset(3, 1, 40_000, one, false) }, minBlocks: 3},
	{name: "several partitions", data: func() dataset {
		return genDataset(4, 7, 5_000, func(i int) int { return 1 + i%17 }, false)
	}, minBlocks: 7},
	{name: "huge value set split", data: func() dataset {
		d := genDataset(5, 1, 5, func(i int) int { return []int{2, 3, 300_000, 1, 4}[i] }, false)
		return d
	}, minBlocks: 10},
	{name: "split keys small blocks", data: func() dataset {
		return genDataset(6, 3, 300, func(i int) int { return 1 + (i*37)%200 }, false)
	}, target: 4096, minBlocks: 100},
	{name: "compressible", data: func() dataset {
		return genDataset(7, 4, 3_000, func(i int) int { return 1 + i%50 }, true)
	}, minBlocks: 4, compressed: true},
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.data()
			target := tc.target
			if target == 0 {
				target = BlockTarget
			}
			data, sum := encode(t, d, 42, target)
			keys, pairs := d.counts()
			if sum.Entries != keys || sum.Pairs != pairs || sum.Blocks < tc.minBlocks {
				t.Fatalf("write summary %+v; want %d keys, %d pairs, >= %d blocks", sum, keys, pairs, tc.minBlocks)
			}
			if tc.compressed && sum.RawBytes < 2*sum.Bytes {
				t.Fatalf("compressible data not compressed: %+v", sum)
			}
			if !tc.compressed && sum.RawBytes > sum.Bytes {
				t.Fatalf("random data stored in fewer bytes than raw: %+v", sum)
			}
			path := writeTemp(t, data)
			wantH := Header{LSN: 42, Parts: len(d), Created: time.Unix(0, 1234567890)}

			check := func(t *testing.T, h Header, s Summary, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				if h.LSN != wantH.LSN || h.Parts != wantH.Parts || !h.Created.Equal(wantH.Created) {
					t.Fatalf("header %+v, want %+v", h, wantH)
				}
				if s != sum {
					t.Fatalf("summary %+v, want %+v", s, sum)
				}
			}
			for _, par := range []int{1, 4} {
				var c collector
				h, s, err := LoadFile(context.Background(), vfs.Default, path, par, c.fn)
				check(t, h, s, err)
				c.check(t, d, par == 1)
			}
			var c collector
			h, s, err := Read(context.Background(), bytes.NewReader(data), c.fn)
			check(t, h, s, err)
			c.check(t, d, true)

			h, s, err = VerifyFile(vfs.Default, path)
			check(t, h, s, err)
			if h, err = ReadHeader(vfs.Default, path); err != nil || h.LSN != 42 || h.Parts != len(d) {
				t.Fatalf("ReadHeader = %+v, %v", h, err)
			}
		})
	}
}

// Streaming Read delivers exactly what LoadFile delivers with one decoder,
// in the same order.
func TestReadEqualsLoad(t *testing.T) {
	d := genDataset(11, 5, 800, func(i int) int { return 1 + (i*13)%120 }, false)
	data, _ := encode(t, d, 9, 8192)
	path := writeTemp(t, data)
	var a, b collector
	ha, sa, err := LoadFile(context.Background(), vfs.Default, path, 1, a.fn)
	if err != nil {
		t.Fatal(err)
	}
	hb, sb, err := Read(context.Background(), bytes.NewReader(data), b.fn)
	if err != nil {
		t.Fatal(err)
	}
	if ha != hb || sa != sb {
		t.Fatalf("LoadFile %+v %+v, Read %+v %+v", ha, sa, hb, sb)
	}
	// Read delivers in file order, LoadFile by runs of blocks; per key the
	// calls are the same and in the same order.
	ma, mb := joinByKey(a.got), joinByKey(b.got)
	if len(a.got) != len(b.got) || len(ma) != len(mb) {
		t.Fatalf("LoadFile made %d calls for %d keys, Read %d for %d", len(a.got), len(ma), len(b.got), len(mb))
	}
	if !sameEntries(ma, mb) {
		t.Fatal("LoadFile and Read deliver other values for a key")
	}
	a.check(t, d, true)
	b.check(t, d, true)
}

// Values of a split key must arrive in order even when many goroutines
// decode: runs of continuation blocks stay on one goroutine.
func TestSplitKeyOrderParallel(t *testing.T) {
	d := genDataset(12, 2, 3, func(int) int { return 5_000 }, false)
	data, sum := encode(t, d, 1, 1024)
	if sum.Blocks < 100 {
		t.Fatalf("only %d blocks", sum.Blocks)
	}
	for range 5 {
		var c collector
		if _, _, err := loadBytes(data, "x", 8, c.fn); err != nil {
			t.Fatal(err)
		}
		c.check(t, d, false)
	}
}

func TestLoadCallbackError(t *testing.T) {
	d := genDataset(13, 4, 2_000, one, false)
	data, _ := encode(t, d, 1, 4096)
	boom := errors.New("boom")
	for _, par := range []int{1, 3} {
		var calls atomic.Int64
		_, _, err := loadBytes(data, "x", par, func(cid.CID, []cid.CID) error {
			if calls.Add(1) == 100 {
				return boom
			}
			return nil
		})
		if par == 1 && !errors.Is(err, boom) || par > 1 && err == nil {
			t.Fatalf("parallelism %d: err = %v, want boom", par, err)
		}
	}
	_, _, err := Read(context.Background(), bytes.NewReader(data), func(cid.CID, []cid.CID) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Read: err = %v", err)
	}
}

func TestLoadCancelled(t *testing.T) {
	d := genDataset(14, 2, 5_000, one, false)
	data, _ := encode(t, d, 1, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	var c collector
	_, _, err := load(ctx, bytes.NewReader(data), int64(len(data)), "x", 2, pairsOnly(func(k cid.CID, v []cid.CID) error {
		cancel()
		return c.fn(k, v)
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("load: err = %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	_, _, err = Read(ctx, bytes.NewReader(data), func(cid.CID, []cid.CID) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Read: err = %v", err)
	}
}

func TestWriteRejectsBadInput(t *testing.T) {
	k1, k2 := cid.FromWords(0, 0, 0, 1), cid.FromWords(0, 0, 0, 2)
	v1, v2 := cid.FromWords(1, 0, 0, 1), cid.FromWords(1, 0, 0, 2)
	part := func(es ...entry) Part { return dataset{es}.parts()[0] }
	tests := []struct {
		name  string
		h     Header
		parts []Part
		want  string
	}{
		{"keys descending", Header{}, []Part{part(entry{k2, []cid.CID{v1}}, entry{k1, []cid.CID{v1}})}, "does not follow"},
		{"duplicate key", Header{}, []Part{part(entry{k1, []cid.CID{v1}}, entry{k1, []cid.CID{v2}})}, "does not follow"},
		{"values descending", Header{}, []Part{part(entry{k1, []cid.CID{v2, v1}})}, "not strictly ascending"},
		{"duplicate value", Header{}, []Part{part(entry{k1, []cid.CID{v1, v1}})}, "not strictly ascending"},
		{"part count mismatch", Header{Parts: 2}, []Part{part()}, "declares 2 partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Write(context.Background(), &bytes.Buffer{}, tt.h, tt.parts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	if got := Name(4711); got != "00000000000000004711.snap" {
		t.Fatalf("Name = %q", got)
	}
	for _, lsn := range []uint64{0, 1, 4711, 1<<64 - 1} {
		if got, ok := ParseName(Name(lsn)); !ok || got != lsn {
			t.Fatalf("ParseName(Name(%d)) = %d, %v", lsn, got, ok)
		}
	}
	for _, bad := range []string{
		"", ".snap", "4711.snap", "00000000000000004711.snap.tmp", "00000000000000004711.wal",
		"0000000000000000471x.snap", "+0000000000000004711.snap", "99999999999999999999.snap",
		"000000000000000004711.snap",
	} {
		if lsn, ok := ParseName(bad); ok {
			t.Errorf("ParseName(%q) = %d, true", bad, lsn)
		}
	}
}
