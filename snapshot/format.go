package snapshot

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/cidstore/cidstore/cid"
)

const (
	// Magic opens every snapshot and closes it (the last 8 bytes of the
	// trailer).
	Magic = "CIDSNAP1"

	// Version is the format version written by this package for a
	// snapshot with triples; one without triples is written as
	// VersionPairs, which readers before triples also accept.
	Version = 2

	// VersionPairs is the version of a snapshot without triple blocks.
	VersionPairs = 1

	// HeaderSize is the size of the file header.
	HeaderSize = 36

	// BlockHeaderSize is the size of the header of every block frame.
	BlockHeaderSize = 28

	// FooterFixedSize is the size of the footer before the block index.
	FooterFixedSize = 40

	// IndexEntrySize is the size of one block index entry in the footer.
	IndexEntrySize = 52

	// TrailerSize is the size of the fixed trailer at the end of a file.
	TrailerSize = 32

	// BlockTarget is the uncompressed size the writer fills blocks up to;
	// no block it writes is larger.
	BlockTarget = 1 << 20

	// MaxBlockSize is the largest uncompressed or stored block length a
	// reader accepts (4 MiB). Longer lengths are rejected before anything
	// is allocated.
	MaxBlockSize = 4 << 20

	// MaxParts is the largest partition count a snapshot may declare.
	MaxParts = 1 << 16
)

// Frame kinds: the first byte of a block frame and of the footer.
const (
	kindBlock  = 'B'
	kindFooter = 'F'
)

// Block codecs.
const (
	codecRaw  = 0
	codecZstd = 1
)

// Block flags.
const (
	// flagCont marks a block whose first entry continues the last key of
	// the previous block of the same partition (a value set split across
	// blocks).
	flagCont = 1
	// flagTriples marks a block of a triple partition: its values are
	// 64 bytes, two CIDs, wide.
	flagTriples = 2
	// knownFlags are the flags a reader accepts.
	knownFlags = flagCont | flagTriples
)

// compareValues compares two values of equal width, CID by CID.
func compareValues(a, b []cid.CID) int {
	for i := range a {
		if c := cid.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// valueWidth returns the width of a value in a block with these flags.
func valueWidth(flags uint8) int {
	if flags&flagTriples != 0 {
		return 2 * cid.Size
	}
	return cid.Size
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Update(0, crcTable, b) }

var le = binary.LittleEndian

// appendHeader appends the file header for h (whose Parts and Created are
// already final).
func appendHeader(dst []byte, h Header) []byte {
	var b [HeaderSize]byte
	copy(b[0:8], Magic)
	v := uint16(VersionPairs)
	if h.Triples > 0 {
		v = Version
	}
	le.PutUint16(b[8:10], v)
	le.PutUint32(b[12:16], uint32(h.Parts))
	le.PutUint64(b[16:24], h.LSN)
	le.PutUint64(b[24:32], uint64(h.Created.UnixNano()))
	le.PutUint32(b[32:36], crc(b[0:32]))
	return append(dst, b[:]...)
}

// parseHeader decodes and validates a file header. It returns a reason on
// failure.
func parseHeader(b []byte) (Header, string) {
	if len(b) < HeaderSize {
		return Header{}, "short header"
	}
	b = b[:HeaderSize]
	if string(b[0:8]) != Magic {
		return Header{}, "bad magic"
	}
	if crc(b[0:32]) != le.Uint32(b[32:36]) {
		return Header{}, "header checksum mismatch"
	}
	v := le.Uint16(b[8:10])
	if v != Version && v != VersionPairs {
		return Header{}, "unsupported version"
	}
	if le.Uint16(b[10:12]) != 0 {
		return Header{}, "nonzero reserved header bytes"
	}
	parts := le.Uint32(b[12:16])
	if parts > MaxParts {
		return Header{}, "partition count too large"
	}
	return Header{
		LSN:       le.Uint64(b[16:24]),
		Parts:     int(parts),
		Created:   time.Unix(0, int64(le.Uint64(b[24:32]))),
		pairsOnly: v == VersionPairs,
	}, ""
}

// triplesReason is the reason to refuse a block with flags in a file
// with header h: a file of VersionPairs holds no triple blocks.
func triplesReason(h Header, flags uint8) string {
	if h.pairsOnly && flags&flagTriples != 0 {
		return "triple block in a snapshot of the pairs-only version"
	}
	return ""
}

// blockHeader is a decoded block frame header.
type blockHeader struct {
	codec   uint8
	flags   uint8
	part    uint32
	entries uint32
	pairs   uint32
	rawLen  uint32
	stored  uint32
	crc     uint32
}

// putBlockHeader fills b[:BlockHeaderSize] for a block whose stored bytes
// are b[BlockHeaderSize:], including the checksum.
func putBlockHeader(b []byte, h blockHeader) {
	b[0] = kindBlock
	b[1] = h.codec
	b[2] = h.flags
	b[3] = 0
	le.PutUint32(b[4:8], h.part)
	le.PutUint32(b[8:12], h.entries)
	le.PutUint32(b[12:16], h.pairs)
	le.PutUint32(b[16:20], h.rawLen)
	le.PutUint32(b[20:24], h.stored)
	le.PutUint32(b[24:28], blockCRC(b, b[BlockHeaderSize:]))
}

// parseBlockHeader decodes b[:BlockHeaderSize] and checks every field that
// can be checked without the stored bytes, so that the lengths it returns
// are safe to allocate.
func parseBlockHeader(b []byte, parts int) (blockHeader, string) {
	if b[0] != kindBlock {
		return blockHeader{}, "not a block frame"
	}
	h := blockHeader{
		codec:   b[1],
		flags:   b[2],
		part:    le.Uint32(b[4:8]),
		entries: le.Uint32(b[8:12]),
		pairs:   le.Uint32(b[12:16]),
		rawLen:  le.Uint32(b[16:20]),
		stored:  le.Uint32(b[20:24]),
		crc:     le.Uint32(b[24:28]),
	}
	switch {
	case b[3] != 0 || h.flags&^knownFlags != 0:
		return h, "unknown block flags"
	case uint64(h.part) >= uint64(parts):
		return h, "block partition out of range"
	case h.rawLen > MaxBlockSize:
		return h, "block length exceeds maximum"
	case h.codec == codecRaw && h.stored != h.rawLen:
		return h, "raw block stored length differs from its length"
	case h.codec == codecZstd && (h.stored == 0 || h.stored >= h.rawLen):
		return h, "compressed block not smaller than its length"
	case h.codec != codecRaw && h.codec != codecZstd:
		return h, "unknown block codec"
	case h.entries == 0 || h.pairs < h.entries:
		return h, "bad block entry or pair count"
	case uint64(h.entries)*(cid.Size+1)+uint64(h.pairs)*uint64(valueWidth(h.flags)) > uint64(h.rawLen):
		return h, "block counts exceed its length"
	}
	return h, ""
}

// blockCRC returns the checksum of a block frame given its header bytes and
// stored bytes.
func blockCRC(hdr, stored []byte) uint32 {
	c := crc32.Update(0, crcTable, hdr[0:24])
	return crc32.Update(c, crcTable, stored)
}

// indexEntry is one entry of the block index.
type indexEntry struct {
	offset uint64
	stored uint32
	part   uint32
	flags  uint8
	first  cid.CID
}

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	var b [IndexEntrySize]byte
	le.PutUint64(b[0:8], e.offset)
	le.PutUint32(b[8:12], e.stored)
	le.PutUint32(b[12:16], e.part)
	b[16] = e.flags
	copy(b[20:52], e.first[:])
	return append(dst, b[:]...)
}

func parseIndexEntry(b []byte) (indexEntry, string) {
	e := indexEntry{
		offset: le.Uint64(b[0:8]),
		stored: le.Uint32(b[8:12]),
		part:   le.Uint32(b[12:16]),
		flags:  b[16],
	}
	copy(e.first[:], b[20:52])
	if e.flags&^knownFlags != 0 || b[17] != 0 || b[18] != 0 || b[19] != 0 {
		return e, "unknown index entry flags"
	}
	return e, ""
}

// totals are the counts recorded in the footer (keys and pairs count the
// entries and values of all blocks, triple blocks included), and the
// share of triple blocks in them, which the footer does not record.
type totals struct {
	keys, pairs, blocks, raw uint64
	tripleKeys, triples      uint64
}

// disk returns the totals the footer records.
func (t totals) disk() totals {
	t.tripleKeys, t.triples = 0, 0
	return t
}

// addBlock counts a block. A key split over blocks counts once: a block
// that continues the previous one's last key does not start a key.
func (t *totals) addBlock(h blockHeader) {
	keys := uint64(h.entries)
	if h.flags&flagCont != 0 {
		keys--
	}
	t.keys += keys
	t.pairs += uint64(h.pairs)
	if h.flags&flagTriples != 0 {
		t.tripleKeys += keys
		t.triples += uint64(h.pairs)
	}
	t.blocks++
	t.raw += uint64(h.rawLen)
}

// add adds o's counts to t.
func (t *totals) add(o totals) {
	t.keys += o.keys
	t.pairs += o.pairs
	t.blocks += o.blocks
	t.raw += o.raw
	t.tripleKeys += o.tripleKeys
	t.triples += o.triples
}

// summary describes a snapshot of size bytes with these totals.
func (t totals) summary(size int64) Summary {
	return Summary{
		Entries:    int64(t.keys - t.tripleKeys),
		Pairs:      int64(t.pairs - t.triples),
		TripleKeys: int64(t.tripleKeys),
		Triples:    int64(t.triples),
		Blocks:     int64(t.blocks),
		Bytes:      size,
		RawBytes:   int64(t.raw),
	}
}

func appendFooterFixed(dst []byte, t totals) []byte {
	var b [FooterFixedSize]byte
	b[0] = kindFooter
	le.PutUint64(b[8:16], t.keys)
	le.PutUint64(b[16:24], t.pairs)
	le.PutUint64(b[24:32], t.blocks)
	le.PutUint64(b[32:40], t.raw)
	return append(dst, b[:]...)
}

func parseFooterFixed(b []byte) (totals, string) {
	if b[0] != kindFooter {
		return totals{}, "not a footer"
	}
	for _, x := range b[1:8] {
		if x != 0 {
			return totals{}, "nonzero reserved footer bytes"
		}
	}
	return totals{
		keys:   le.Uint64(b[8:16]),
		pairs:  le.Uint64(b[16:24]),
		blocks: le.Uint64(b[24:32]),
		raw:    le.Uint64(b[32:40]),
	}, ""
}

// appendTrailer appends the trailer. footerCRC is the running checksum of
// the footer bytes; the trailer's own first 16 bytes are folded in.
func appendTrailer(dst []byte, footerOff, footerLen uint64, footerCRC uint32) []byte {
	var b [TrailerSize]byte
	le.PutUint64(b[0:8], footerOff)
	le.PutUint64(b[8:16], footerLen)
	le.PutUint32(b[16:20], crc32.Update(footerCRC, crcTable, b[0:16]))
	copy(b[24:32], Magic)
	return append(dst, b[:]...)
}

// trailer is a decoded trailer.
type trailer struct {
	footerOff, footerLen uint64
	crc                  uint32
}

func parseTrailer(b []byte) (trailer, string) {
	if string(b[24:32]) != Magic {
		return trailer{}, "bad trailer magic"
	}
	if le.Uint32(b[20:24]) != 0 {
		return trailer{}, "nonzero reserved trailer bytes"
	}
	t := trailer{footerOff: le.Uint64(b[0:8]), footerLen: le.Uint64(b[8:16]), crc: le.Uint32(b[16:20])}
	if t.footerLen < FooterFixedSize || (t.footerLen-FooterFixedSize)%IndexEntrySize != 0 {
		return t, "bad footer length"
	}
	if t.footerOff < HeaderSize {
		return t, "bad footer offset"
	}
	return t, ""
}
