package wal

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/cidstore/cidstore/vfs"
)

// Record is one decoded log record. Payload aliases the Reader's buffer and
// is only valid until the next call to Reader.Next.
type Record struct {
	LSN     uint64
	Type    uint8
	Payload []byte
}

// Reader decodes a stream of record frames (the bytes of a segment after its
// header). Next returns records until the stream ends with one of:
//
//   - io.EOF: the stream ended exactly at a frame boundary, or nothing but
//     zero bytes follow the last frame (the unused, zero-filled rest of a
//     preallocated segment);
//   - ErrTorn: the stream ends in a partial or damaged frame that no valid
//     frame follows (a torn write);
//   - a *CorruptError (errors.Is(err, ErrCorrupt)): a damaged frame with a
//     valid frame after it, or a valid frame whose LSN is not the previous
//     LSN plus one.
//
// Deciding between torn and corrupt needs to look past the damage, so on the
// failure path only the Reader scans the rest of the stream byte by byte
// for a frame that passes its checksum and carries an LSN greater than the
// last good one. A Reader made by NewReader reads that rest of the stream
// into memory first; one reading a segment file scans the file in place,
// with memory that does not depend on the file's size.
type Reader struct {
	r    *bufio.Reader
	src  segmentSource // the segment file being read, or nil for a bare stream
	file string
	off  int64  // offset of the next frame, relative to the stream start
	base int64  // added to offsets in errors
	next uint64 // expected LSN of the next record; 0 accepts any first LSN
	last uint64 // LSN of the last good record
	hdr  [HeaderSize]byte
	buf  []byte
	err  error
}

// NewReader returns a Reader decoding frames from r. The first record may
// carry any LSN; every later record must carry the previous LSN plus one.
func NewReader(r io.Reader) *Reader {
	return newReader(r, "", 0, 0)
}

func newReader(r io.Reader, file string, base int64, firstLSN uint64) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), file: file, base: base, next: firstLSN}
}

// segmentSource is a segment file as a Reader sees it: read in order
// through the bufio.Reader, and at random on the failure path.
type segmentSource interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
}

// newSegmentReader returns a Reader over the segment file f, positioned
// just after the segment header, that scans f in place on the failure
// path instead of reading the rest of it into memory. If reuse is not nil
// it is that Reader, reset, keeping its buffers.
func newSegmentReader(f vfs.File, path string, firstLSN uint64, reuse *Reader) *Reader {
	if reuse == nil {
		reuse = newReader(f, path, SegmentHeaderSize, firstLSN)
		// Records up to this size need no check on the file before
		// they are read (see precheck).
		reuse.buf = make([]byte, 0, 64<<10)
	} else {
		reuse.r.Reset(f)
		*reuse = Reader{r: reuse.r, file: path, base: SegmentHeaderSize, next: firstLSN, buf: reuse.buf[:0]}
	}
	reuse.src = f
	return reuse
}

// Offset returns the offset, relative to the start of the stream, just past
// the last record returned by Next. After Next fails it is the offset of the
// bad or torn frame, which is where a repair would truncate.
func (r *Reader) Offset() int64 { return r.off }

// LastLSN returns the LSN of the last record returned by Next (0 if none).
func (r *Reader) LastLSN() uint64 { return r.last }

// Next decodes the next record. See Reader for how the stream ends. Once Next
// has returned an error it keeps returning it.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next1()
	if err != nil {
		r.err = err
		return Record{}, err
	}
	return rec, nil
}

func (r *Reader) next1() (Record, error) {
	n, err := io.ReadFull(r.r, r.hdr[:])
	if err != nil {
		if n == 0 && err == io.EOF {
			return Record{}, io.EOF
		}
		if err != io.ErrUnexpectedEOF {
			return Record{}, r.ioErr(err)
		}
		if allZero(r.hdr[:n]) {
			return Record{}, io.EOF
		}
		return Record{}, r.classify(r.hdr[:n], nil, "incomplete record header")
	}
	if r.hdr == ([HeaderSize]byte{}) {
		return Record{}, r.zeroTail()
	}
	h := parseFrameHeader(r.hdr[:])
	if reason := h.problem(); reason != "" {
		return Record{}, r.classify(r.hdr[:], nil, reason)
	}
	length, lsn := h.length, h.lsn
	if reason, err := r.precheck(h); err != nil {
		return Record{}, r.ioErr(err)
	} else if reason != "" {
		return Record{}, r.classify(r.hdr[:], nil, reason)
	}
	payload, err := r.readPayload(int(length))
	if err != nil {
		if err != io.ErrUnexpectedEOF && err != io.EOF {
			return Record{}, r.ioErr(err)
		}
		return Record{}, r.classify(r.hdr[:], payload, "incomplete record payload")
	}
	if sumOf(r.hdr[:], payload) != h.crc {
		return Record{}, r.classify(r.hdr[:], payload, "checksum mismatch")
	}
	if r.next != 0 && lsn != r.next {
		return Record{}, &CorruptError{File: r.file, Offset: r.base + r.off, LSN: r.next,
			Reason: fmt.Sprintf("record carries LSN %d", lsn)}
	}
	if r.next == 0 && r.last == math.MaxUint64 { // no LSN follows
		return Record{}, &CorruptError{File: r.file, Offset: r.base + r.off, LSN: r.next,
			Reason: fmt.Sprintf("record carries LSN %d after LSN %d", lsn, r.last)}
	}
	r.off += HeaderSize + int64(length)
	r.last = lsn
	r.next = lsn + 1
	return Record{LSN: lsn, Type: h.typ, Payload: payload}, nil
}

// readPayload reads n bytes into the reusable buffer. When the buffer must
// grow for a bare stream it grows in steps of at most 1 MiB of unread
// data, so a damaged length field at the end of a short stream does not
// allocate the full length up front; for a segment file precheck has
// already found the frame valid, so the buffer takes its length at once.
func (r *Reader) readPayload(n int) ([]byte, error) {
	if cap(r.buf) < n && r.src != nil {
		r.buf = make([]byte, 0, n) // precheck found the frame valid on the file
	}
	if cap(r.buf) >= n {
		b := r.buf[:n]
		m, err := io.ReadFull(r.r, b)
		return b[:m], err
	}
	b := r.buf[:0]
	for len(b) < n {
		step := min(n-len(b), 1<<20)
		b = slices.Grow(b, step)
		m, err := io.ReadFull(r.r, b[len(b):len(b)+step])
		b = b[:len(b)+m]
		if err != nil {
			r.buf = b[:0]
			return b, err
		}
	}
	r.buf = b
	return b, nil
}

// precheck is called with the header of a frame whose payload does not
// fit in the buffer. Reading a segment file, it checks on the file that
// the frame is complete and passes its checksum before the Reader
// allocates a buffer of the length the frame claims, and returns the
// reason if not. For a bare stream it does nothing: readPayload grows
// the buffer only as the payload arrives.
func (r *Reader) precheck(h frameHeader) (string, error) {
	if r.src == nil || int(h.length) <= cap(r.buf) {
		return "", nil
	}
	fi, err := r.src.Stat()
	if err != nil {
		return "", err
	}
	off := r.base + r.off + HeaderSize
	if off+int64(h.length) > fi.Size() {
		return "incomplete record payload", nil
	}
	c, err := crcAt(r.src, sumOf(r.hdr[:], nil), off, int64(h.length), make([]byte, 64<<10))
	switch {
	case err == io.ErrUnexpectedEOF:
		return "incomplete record payload", nil
	case err != nil:
		return "", err
	case c != h.crc:
		return "checksum mismatch", nil
	}
	return "", nil
}

// classify decides whether the damaged frame starting at r.off is a torn
// tail or corruption: it looks for a valid frame after the damage. A
// segment file is scanned in place. For a bare stream, hdr and payload
// hold the frame bytes already read and the rest of the stream is read
// into memory here; skipped counts zeros consumed before hdr (see
// zeroTail).
func (r *Reader) classify(hdr, payload []byte, reason string) error {
	return r.classifyAfter(0, hdr, payload, reason)
}

func (r *Reader) classifyAfter(skipped int64, hdr, payload []byte, reason string) error {
	lastGood := r.last
	bounded := true
	if r.next != 0 {
		lastGood = r.next - 1
	} else if r.last == 0 {
		bounded = false // first record of a stream with no expected LSN
	}
	var s *frameScanner
	var origin int64
	if r.src != nil {
		fi, err := r.src.Stat()
		if err != nil {
			return r.ioErr(err)
		}
		s = newFrameScanner(r.src, fi.Size())
		origin = r.base + r.off
	} else {
		rest, err := io.ReadAll(r.r)
		if err != nil {
			return r.ioErr(err)
		}
		data := make([]byte, 0, len(hdr)+len(payload)+len(rest))
		data = append(append(append(data, hdr...), payload...), rest...)
		s = newFrameScanner(bytes.NewReader(data), int64(len(data)))
		origin = -skipped
	}
	// No frame starts in the first skipped bytes: their headers are zeros.
	q, err := s.find(origin+max(skipped, 1), origin, lastGood, bounded)
	if err != nil {
		return r.ioErr(err)
	}
	if q < 0 {
		return ErrTorn
	}
	return &CorruptError{File: r.file, Offset: r.base + r.off, LSN: lastGood + 1, Reason: reason}
}

// zeroTail is called after a header of zeros: it returns io.EOF when only
// zeros follow up to the end of the stream (the unused rest of a
// preallocated segment), else the damage as classify decides it. Zeros are
// checked as they stream past, so a long preallocated tail costs no memory.
func (r *Reader) zeroTail() error {
	zeros := int64(HeaderSize)
	for {
		b, err := r.r.Peek(r.r.Size())
		if !allZero(b) {
			// Damage after all. No frame can start where its header
			// would be all zeros, so only the last HeaderSize-1 zeros
			// matter to classify; the rest are skipped.
			keep := int64(HeaderSize - 1)
			return r.classifyAfter(zeros-keep, make([]byte, keep), nil, "zeros followed by data")
		}
		if _, derr := r.r.Discard(len(b)); derr != nil {
			return r.ioErr(derr)
		}
		zeros += int64(len(b))
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return io.EOF
		default:
			return r.ioErr(err)
		}
	}
}

func (r *Reader) ioErr(err error) error {
	return fmt.Errorf("wal: read %s at offset %d: %w", r.file, r.base+r.off, err)
}
