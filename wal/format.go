package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
)

const (
	// HeaderSize is the size in bytes of a record frame header:
	// crc(4) length(4) lsn(8) type(1).
	HeaderSize = 17

	// SegmentHeaderSize is the size of the header at the start of every
	// segment file: the magic "CIDWAL" followed by a little-endian uint16
	// version.
	SegmentHeaderSize = 8

	// SegmentVersion is the segment format version written by this package.
	SegmentVersion = 1

	// MaxPayload is the largest payload a record may carry (64 MiB).
	// Decoders reject larger lengths before allocating anything.
	MaxPayload = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// segmentHeader is the 8-byte header of a version 1 segment.
var segmentHeader = [SegmentHeaderSize]byte{'C', 'I', 'D', 'W', 'A', 'L', SegmentVersion, 0}

// AppendRecord appends the frame of one record to dst and returns the
// extended slice. It does not allocate when dst has room for
// HeaderSize+len(payload) more bytes.
//
// It panics if typ is 0 or the payload exceeds MaxPayload; Log.Append checks
// both and returns an error instead.
func AppendRecord(dst []byte, lsn uint64, typ uint8, payload []byte) []byte {
	if typ == 0 {
		panic("wal: record type 0 is reserved")
	}
	if len(payload) > MaxPayload {
		panic(fmt.Sprintf("wal: payload of %d bytes exceeds MaxPayload", len(payload)))
	}
	start := len(dst)
	dst = slices.Grow(dst, HeaderSize+len(payload))
	dst = dst[:start+HeaderSize]
	h := dst[start:]
	binary.LittleEndian.PutUint32(h[4:8], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:16], lsn)
	h[16] = typ
	dst = append(dst, payload...)
	crc := crc32.Update(0, crcTable, dst[start+4:])
	binary.LittleEndian.PutUint32(dst[start:start+4], crc)
	return dst
}

// frameSize returns the encoded size of a record with an n-byte payload.
func frameSize(n int) int64 { return HeaderSize + int64(n) }

// checkFrame reports whether b begins with a complete frame that passes its
// checksum and has a valid type and length. It returns the record and the
// frame size.
func checkFrame(b []byte) (lsn uint64, typ uint8, payload []byte, size int, ok bool) {
	if len(b) < HeaderSize {
		return 0, 0, nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b[4:8])
	typ = b[16]
	if typ == 0 || n > MaxPayload || uint64(len(b)-HeaderSize) < uint64(n) {
		return 0, 0, nil, 0, false
	}
	size = HeaderSize + int(n)
	if crc32.Update(0, crcTable, b[4:size]) != binary.LittleEndian.Uint32(b[0:4]) {
		return 0, 0, nil, 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]), typ, b[HeaderSize:size], size, true
}

// findFrame scans data byte by byte, starting at index 1, for a valid frame
// whose LSN is greater than lastGood. If bounded, candidates whose LSN is
// larger than could be reached given the distance from the start of data
// (every frame takes at least HeaderSize bytes) are skipped without
// computing a checksum; this keeps the scan cheap over garbage. It reports
// the index of the first such frame, or -1.
func findFrame(data []byte, lastGood uint64, bounded bool) int {
	for p := 1; p+HeaderSize <= len(data); p++ {
		b := data[p:]
		if b[16] == 0 {
			continue
		}
		n := binary.LittleEndian.Uint32(b[4:8])
		if n > MaxPayload || uint64(len(b)-HeaderSize) < uint64(n) {
			continue
		}
		lsn := binary.LittleEndian.Uint64(b[8:16])
		if lsn <= lastGood {
			continue
		}
		if bounded && lsn-lastGood > uint64(p/HeaderSize)+1 {
			continue
		}
		if _, _, _, _, ok := checkFrame(b); ok {
			return p
		}
	}
	return -1
}

// countFrames counts the valid frames in data, walking frame to frame and
// resynchronising byte by byte over damage. It is used to report how many
// records a repair drops; the count is best effort.
func countFrames(data []byte, lastGood uint64) int64 {
	var n int64
	p := 0
	for p+HeaderSize <= len(data) {
		lsn, _, _, size, ok := checkFrame(data[p:])
		if ok && lsn > lastGood {
			n++
			lastGood = lsn
			p += size
			continue
		}
		q := findFrame(data[p:], lastGood, true)
		if q < 0 {
			break
		}
		p += q
	}
	return n
}
