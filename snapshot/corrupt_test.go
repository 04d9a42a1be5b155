package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/vfs"
)

// corruptFixture is a small snapshot with many blocks, raw and compressed
// ones, several partitions and keys split across blocks.
func corruptFixture(t testing.TB) (dataset, []byte) {
	t.Helper()
	d := genDataset(21, 3, 40, func(i int) int {
		if i%17 == 5 {
			return 150 // split across blocks
		}
		return 1 + (i*29)%12
	}, false)
	d = append(d, genDataset(22, 1, 30, func(i int) int { return 1 + i%20 }, true)...)
	data, sum := encode(t, d, 5, 2048)
	if sum.Blocks < 20 || sum.RawBytes <= sum.Bytes-int64(HeaderSize+TrailerSize)-sum.Blocks*(BlockHeaderSize+IndexEntrySize)-FooterFixedSize {
		t.Fatalf("fixture lacks blocks or compressed blocks: %+v", sum)
	}
	return d, data
}

// expectCorrupt loads data from memory as file name and streams it, and
// requires both to fail with a *CorruptError naming the right file (or the
// stream), and to deliver only pairs that are in valid.
func expectCorrupt(t *testing.T, valid pairSet, data []byte, name, what string) {
	t.Helper()
	fn := func(k cid.CID, vals []cid.CID) error {
		for _, v := range vals {
			if !valid[[2]cid.CID{k, v}] {
				return errors.New("delivered a pair that was never written")
			}
		}
		return nil
	}
	for _, stream := range []bool{false, true} {
		var err error
		file := name
		if stream {
			_, _, err = Read(context.Background(), bytes.NewReader(data), fn)
			file = ""
		} else {
			_, _, err = loadBytes(data, name, 2, fn)
		}
		var ce *CorruptError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
			t.Fatalf("%s (stream %v): err = %v, want ErrCorrupt", what, stream, err)
		}
		if testing.Verbose() && what != "truncated" && what != "bit flip" {
			t.Logf("%s (stream %v): %v", what, stream, err)
		}
		if ce.File != file || ce.Offset < 0 || ce.Offset > int64(len(data)) {
			t.Fatalf("%s (stream %v): error names %q offset %d, want %q within %d bytes", what, stream, ce.File, ce.Offset, file, len(data))
		}
	}
}

// pairSet is the set of (key, value) pairs of a dataset.
type pairSet map[[2]cid.CID]bool

func pairsOf(d dataset) pairSet {
	m := make(pairSet)
	for _, es := range d {
		for _, e := range es {
			for _, v := range e.vals {
				m[[2]cid.CID{e.key, v}] = true
			}
		}
	}
	return m
}

// footerStart returns the offset of the footer of a valid snapshot.
func footerStart(data []byte) int {
	return int(binary.LittleEndian.Uint64(data[len(data)-TrailerSize:]))
}

func TestTruncation(t *testing.T) {
	d, data := corruptFixture(t)
	valid := pairsOf(d)
	fstart := footerStart(data)
	var offsets []int
	for n := 0; n < len(data); n++ {
		if n <= HeaderSize+BlockHeaderSize+1 || n >= fstart-BlockHeaderSize-1 || n%37 == 0 {
			offsets = append(offsets, n)
		}
	}
	for _, n := range offsets {
		expectCorrupt(t, valid, data[:n], "trunc.snap", "truncated")
	}
	t.Logf("%d truncations of a %d-byte file", len(offsets), len(data))

	// Through the file API too, including the file name in the error.
	path := writeTemp(t, data[:len(data)-1])
	_, _, err := LoadFile(context.Background(), vfs.Default, path, 2, nil)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != path {
		t.Fatalf("LoadFile of truncated file: %v", err)
	}
	if _, err := ReadHeader(vfs.Default, path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadHeader of truncated file: %v", err)
	}
	if _, _, err := VerifyFile(vfs.Default, path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("VerifyFile of truncated file: %v", err)
	}
}

func TestBitFlips(t *testing.T) {
	d, data := corruptFixture(t)
	valid := pairsOf(d)
	fstart := footerStart(data)
	n := 0
	for off := 0; off < len(data); off++ {
		if off >= HeaderSize && off < fstart && off%31 != 0 {
			continue
		}
		bad := bytes.Clone(data)
		bad[off] ^= 1 << (off % 8)
		expectCorrupt(t, valid, bad, "flip.snap", "bit flip")
		n++
	}
	t.Logf("%d bit flips in a %d-byte file", n, len(data))
	// Appended bytes.
	expectCorrupt(t, valid, append(bytes.Clone(data), 0), "x", "appended byte")
}

// layout locates the blocks of a valid snapshot.
func layout(t *testing.T, data []byte) (Header, footer) {
	t.Helper()
	r := bytes.NewReader(data)
	h, err := readHeader(r, int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	ft, err := readFooter(r, int64(len(data)), "", h)
	if err != nil {
		t.Fatal(err)
	}
	return h, ft
}

// fixBlock recomputes the checksum of the block frame at off.
func fixBlock(b []byte, off int) {
	stored := int(le.Uint32(b[off+20:]))
	end := min(off+BlockHeaderSize+stored, len(b))
	le.PutUint32(b[off+24:], blockCRC(b[off:], b[off+BlockHeaderSize:end]))
}

// fixFooter recomputes the trailer checksum.
func fixFooter(b []byte) {
	t := b[len(b)-TrailerSize:]
	off := le.Uint64(t[0:8])
	c := crc(b[off : len(b)-TrailerSize])
	le.PutUint32(t[16:20], crc32Update(c, t[:16]))
}

// fixHeader recomputes the header checksum.
func fixHeader(b []byte) { le.PutUint32(b[32:36], crc(b[:32])) }

// indexAt returns the footer offset of index entry i.
func indexAt(data []byte, i int) int { return footerStart(data) + FooterFixedSize + i*IndexEntrySize }

// Crafted files carry valid checksums around bad lengths, counts and
// orders. Each must fail with ErrCorrupt quickly and without allocating
// more than a few blocks.
func TestCrafted(t *testing.T) {
	d, data := corruptFixture(t)
	valid := pairsOf(d)
	_, ft := layout(t, data)
	firstOf := func(codec byte) (int, int) {
		for i, e := range ft.index {
			if data[e.offset+1] == codec && e.flags == 0 {
				return i, int(e.offset)
			}
		}
		t.Fatalf("no block with codec %d", codec)
		return 0, 0
	}
	rawI, rawOff := firstOf(codecRaw)
	zI, zOff := firstOf(codecZstd)
	_ = rawI
	contI := slices.IndexFunc(ft.index, func(e indexEntry) bool { return e.flags&flagCont != 0 })
	if contI < 0 {
		t.Fatal("fixture has no continuation block")
	}
	fs := footerStart(data)
	tests := []struct {
		name   string
		mutate func(b []byte)
	}{
		{"block length huge", func(b []byte) { le.PutUint32(b[rawOff+16:], 0xffffffff); fixBlock(b, rawOff) }},
		{"block stored huge", func(b []byte) {
			le.PutUint32(b[rawOff+20:], 0xfffffff0)
			le.PutUint32(b[rawOff+16:], 0xfffffff0)
			fixBlock(b, rawOff)
			le.PutUint32(b[indexAt(b, rawI)+8:], 0xfffffff0)
			fixFooter(b)
		}},
		{"block entry count huge", func(b []byte) { le.PutUint32(b[rawOff+8:], 0xffffffff); fixBlock(b, rawOff) }},
		{"block pair count huge", func(b []byte) { le.PutUint32(b[rawOff+12:], 0xffffffff); fixBlock(b, rawOff) }},
		{"value count huge", func(b []byte) {
			p := rawOff + BlockHeaderSize + cid.Size
			copy(b[p:], binary.AppendUvarint(nil, 1<<62))
			fixBlock(b, rawOff)
		}},
		{"value count zero", func(b []byte) { b[rawOff+BlockHeaderSize+cid.Size] = 0; fixBlock(b, rawOff) }},
		{"compressed length too small", func(b []byte) {
			le.PutUint32(b[zOff+16:], le.Uint32(b[zOff+20:])+1)
			fixBlock(b, zOff)
		}},
		{"compressed length one short", func(b []byte) {
			le.PutUint32(b[zOff+16:], le.Uint32(b[zOff+16:])-1)
			le.PutUint32(b[zOff+12:], le.Uint32(b[zOff+12:])-1)
			fixBlock(b, zOff)
		}},
		{"compressed length too large", func(b []byte) { le.PutUint32(b[zOff+16:], MaxBlockSize); fixBlock(b, zOff) }},
		{"zstd garbage", func(b []byte) {
			for i := zOff + BlockHeaderSize; i < zOff+BlockHeaderSize+int(ft.index[zI].stored); i++ {
				b[i] = byte(i * 131)
			}
			fixBlock(b, zOff)
		}},
		{"unknown codec", func(b []byte) { b[rawOff+1] = 7; fixBlock(b, rawOff) }},
		{"keys swapped", func(b []byte) {
			p := rawOff + BlockHeaderSize
			n := int(b[p+cid.Size]) // first entry's value count (one byte)
			q := p + cid.Size + 1 + n*cid.Size
			var k [cid.Size]byte
			copy(k[:], b[p:])
			copy(b[p:p+cid.Size], b[q:q+cid.Size])
			copy(b[q:q+cid.Size], k[:])
			fixBlock(b, rawOff)
		}},
		{"values swapped", func(b []byte) {
			for _, e := range ft.index {
				off := int(e.offset)
				p := off + BlockHeaderSize
				if b[off+1] != codecRaw || b[p+cid.Size] < 2 {
					continue
				}
				v := p + cid.Size + 1
				var x [cid.Size]byte
				copy(x[:], b[v:])
				copy(b[v:v+cid.Size], b[v+cid.Size:v+2*cid.Size])
				copy(b[v+cid.Size:v+2*cid.Size], x[:])
				fixBlock(b, off)
				return
			}
			t.Fatal("no raw block starts with a multi-value entry")
		}},
		{"continuation flag cleared", func(b []byte) {
			off := int(ft.index[contI].offset)
			b[off+2] = 0
			fixBlock(b, off)
			b[indexAt(b, contI)+16] = 0
			fixFooter(b)
		}},
		{"continuation flag set", func(b []byte) {
			b[rawOff+2] = flagCont
			fixBlock(b, rawOff)
			b[indexAt(b, rawI)+16] = flagCont
			fixFooter(b)
		}},
		{"index first key changed", func(b []byte) { b[indexAt(b, rawI)+20+31] ^= 1; fixFooter(b) }},
		{"index offset moved", func(b []byte) { le.PutUint64(b[indexAt(b, 1):], le.Uint64(b[indexAt(b, 1):])+1); fixFooter(b) }},
		{"index partition changed", func(b []byte) { le.PutUint32(b[indexAt(b, rawI)+12:], 3); fixFooter(b) }},
		{"index partition huge", func(b []byte) { le.PutUint32(b[indexAt(b, rawI)+12:], 0xffffffff); fixFooter(b) }},
		{"footer block count huge", func(b []byte) { le.PutUint64(b[fs+24:], 1<<40); fixFooter(b) }},
		{"footer pairs off by one", func(b []byte) { le.PutUint64(b[fs+16:], le.Uint64(b[fs+16:])+1); fixFooter(b) }},
		{"footer keys off by one", func(b []byte) { le.PutUint64(b[fs+8:], le.Uint64(b[fs+8:])-1); fixFooter(b) }},
		{"footer raw bytes huge", func(b []byte) { le.PutUint64(b[fs+32:], 1<<62); fixFooter(b) }},
		{"trailer footer length huge", func(b []byte) { le.PutUint64(b[len(b)-TrailerSize+8:], 1<<62); fixFooter(b) }},
		{"trailer footer length well-formed but huge", func(b []byte) {
			le.PutUint64(b[len(b)-TrailerSize+8:], FooterFixedSize+IndexEntrySize<<50)
			fixFooter(b)
		}},
		{"trailer footer offset zero", func(b []byte) { le.PutUint64(b[len(b)-TrailerSize:], 0) }},
		{"header parts huge", func(b []byte) { le.PutUint32(b[12:], 1<<31); fixHeader(b) }},
		{"header parts too few", func(b []byte) { le.PutUint32(b[12:], 2); fixHeader(b) }},
		{"header version", func(b []byte) { le.PutUint16(b[8:], Version+1); fixHeader(b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := bytes.Clone(data)
			tt.mutate(bad)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			expectCorrupt(t, valid, bad, "crafted.snap", tt.name)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*MaxBlockSize+4<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
			if elapsed > 5*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

// A stream that claims a huge block must fail before allocating it.
func TestStreamHugeBlockClaim(t *testing.T) {
	_, data := corruptFixture(t)
	bad := bytes.Clone(data[:HeaderSize+BlockHeaderSize])
	le.PutUint32(bad[HeaderSize+16:], MaxBlockSize+1)
	le.PutUint32(bad[HeaderSize+20:], MaxBlockSize+1)
	allocs := testing.AllocsPerRun(5, func() {
		if _, _, err := Read(context.Background(), bytes.NewReader(bad), nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Logf("%.0f allocations", allocs)
}
