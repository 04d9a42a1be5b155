package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
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

	// MaxLSN is the largest LSN a log assigns: 2^63-1, so that an LSN
	// plus one never wraps around and every LSN fits an int64. At ten
	// million records a second it lasts for 29,000 years; only a crafted
	// log gets near it. Append fails with ErrLSNExhausted after it.
	MaxLSN = math.MaxInt64
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

// frameHeader is a record frame header, decoded by parseFrameHeader: the
// one parser of frame headers, which the Reader and the frameScanner that
// checks frames in place (for torn-write detection and repair) share.
type frameHeader struct {
	crc    uint32 // of the header after this field, and the payload
	length uint32 // of the payload
	lsn    uint64
	typ    uint8
}

// parseFrameHeader decodes the first HeaderSize bytes of b.
func parseFrameHeader(b []byte) frameHeader {
	_ = b[HeaderSize-1]
	return frameHeader{
		crc:    binary.LittleEndian.Uint32(b[0:4]),
		length: binary.LittleEndian.Uint32(b[4:8]),
		lsn:    binary.LittleEndian.Uint64(b[8:16]),
		typ:    b[16],
	}
}

// problem says why h cannot head a frame: a type of 0 or a length over
// MaxPayload; "" if it can.
func (h frameHeader) problem() string {
	switch {
	case h.typ == 0:
		return "invalid record type 0"
	case h.length > MaxPayload:
		return fmt.Sprintf("record length %d exceeds MaxPayload", h.length)
	}
	return ""
}

// size is the size of the frame h heads, header included.
func (h frameHeader) size() int64 { return frameSize(int(h.length)) }

// sumOf returns the checksum a frame with header bytes raw (HeaderSize of
// them) and the given payload must carry in its crc field.
func sumOf(raw, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, crcTable, raw[4:HeaderSize]), crcTable, payload)
}

// scanWindow is the most of its input a frameScanner holds at once.
const scanWindow = 1 << 20

// frameScanner looks for valid frames in an input it reads at random
// (a segment file, or a stream's bytes already in memory). It reads the
// input through a window of at most scanWindow bytes and checks the
// checksum of a frame that does not fit in the window by streaming it,
// so the memory it needs does not depend on how long the input is, how
// much of it is damaged, or what lengths damaged frames claim.
type frameScanner struct {
	r   io.ReaderAt
	end int64  // input length
	win []byte // input bytes from offset off
	off int64
	buf []byte // streams the checksum of a frame longer than the window
}

func newFrameScanner(r io.ReaderAt, end int64) *frameScanner {
	return &frameScanner{r: r, end: end}
}

// fill moves the window to start at p. An input that turns out shorter
// than end (a file truncated meanwhile) ends where reading stopped.
func (s *frameScanner) fill(p int64) error {
	n := int(min(scanWindow, s.end-p))
	if cap(s.win) < n {
		s.win = make([]byte, n)
	}
	s.win, s.off = s.win[:n], p
	m, err := s.r.ReadAt(s.win, p)
	if m < n {
		if err != nil && err != io.EOF {
			return err
		}
		s.win, s.end = s.win[:m], p+int64(m)
	}
	return nil
}

// header returns the HeaderSize bytes at p, moving the window if needed,
// or nil if the input ends first.
func (s *frameScanner) header(p int64) ([]byte, error) {
	if p+HeaderSize > s.end {
		return nil, nil
	}
	if p < s.off || p+HeaderSize > s.off+int64(len(s.win)) {
		if err := s.fill(p); err != nil {
			return nil, err
		}
		if len(s.win) < HeaderSize {
			return nil, nil
		}
	}
	return s.win[p-s.off:][:HeaderSize], nil
}

// check reports whether the frame whose header raw starts at p has a
// valid type and length, fits in the input and passes its checksum, and
// returns its size.
func (s *frameScanner) check(p int64, raw []byte) (int64, bool, error) {
	h := parseFrameHeader(raw)
	size := h.size()
	if h.problem() != "" || p+size > s.end {
		return 0, false, nil
	}
	if p >= s.off && p+size <= s.off+int64(len(s.win)) {
		w := s.win[p-s.off:]
		return size, sumOf(w, w[HeaderSize:size]) == h.crc, nil
	}
	if s.buf == nil {
		s.buf = make([]byte, 64<<10)
	}
	c, err := crcAt(s.r, sumOf(raw, nil), p+HeaderSize, int64(h.length), s.buf)
	if err == io.ErrUnexpectedEOF {
		return 0, false, nil // the input ended inside the frame
	}
	return size, err == nil && c == h.crc, err
}

// crcAt extends the checksum c over the n bytes of r at off, read through
// buf. It returns io.ErrUnexpectedEOF if r ends first.
func crcAt(r io.ReaderAt, c uint32, off, n int64, buf []byte) (uint32, error) {
	for n > 0 {
		b := buf[:min(int64(len(buf)), n)]
		m, err := r.ReadAt(b, off)
		c = crc32.Update(c, crcTable, b[:m])
		off += int64(m)
		n -= int64(m)
		if m < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return c, err
		}
	}
	return c, nil
}

// find scans the input from offset first on, byte by byte, for a valid
// frame whose LSN is greater than lastGood, and returns its offset, or -1.
// origin is where the damage being classified starts. If bounded,
// candidates whose LSN is larger than could be reached given their
// distance from origin (every frame takes at least HeaderSize bytes) are
// skipped without computing a checksum; this keeps the scan cheap over
// garbage. Positions whose type byte is zero are skipped a word at a
// time, so a long run of zeros costs little.
func (s *frameScanner) find(first, origin int64, lastGood uint64, bounded bool) (int64, error) {
	for p := first; p+HeaderSize <= s.end; p++ {
		if _, err := s.header(p); err != nil {
			return -1, err
		}
		if p+HeaderSize > s.off+int64(len(s.win)) {
			break // the input ended early
		}
		b := s.win[p-s.off:]
		if i := nonZeroFrom(b, HeaderSize-1); i > HeaderSize-1 {
			// Every position before i-16 has a zero type byte.
			p += int64(i-(HeaderSize-1)) - 1
			continue
		}
		h := parseFrameHeader(b)
		if h.length > MaxPayload || p+h.size() > s.end || h.lsn <= lastGood {
			continue
		}
		if bounded && h.lsn-lastGood > uint64((p-origin)/HeaderSize)+1 {
			continue
		}
		_, ok, err := s.check(p, b[:HeaderSize])
		if err != nil {
			return -1, err
		}
		if ok {
			return p, nil
		}
	}
	return -1, nil
}

// nonZeroFrom returns the index of the first non-zero byte of b at or
// after i, or len(b). Runs of zeros are skipped a page at a time by
// comparing them with zeros (at memory speed), then a word at a time.
func nonZeroFrom(b []byte, i int) int {
	const page = 4096
	for i+page <= len(b) && bytes.Equal(b[i:i+page], zeros[:page]) {
		i += page
	}
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if b[i] != 0 {
			return i
		}
	}
	return len(b)
}
