package snapshot

import (
	"bufio"
	"context"
	"errors"
	"hash/crc32"
	"io"

	"github.com/cidstore/cidstore/cid"
)

// Read imports a snapshot from a stream, such as an export piped from
// another store. It reads r sequentially, once, and calls fn for every
// entry as LoadFile does, but on the calling goroutine and in stream order.
// Each block's lengths, checksum and entry order are validated before its
// entries are delivered; the footer, whose index must describe exactly the
// blocks that were read, and the trailer are validated at the end, and the
// stream must end there. Because the footer comes last, fn has seen the
// entries of every block before a damaged footer is detected: on any error
// the caller must discard what it loaded.
//
// Damage, including a stream that ends early, is reported as a
// *CorruptError with File "" and the offset from the start of the stream.
// Memory use is bounded by a few blocks plus 52 bytes per block read.
func Read(ctx context.Context, r io.Reader, fn func(key cid.CID, vals []cid.CID) error) (Header, Summary, error) {
	return ReadEntries(ctx, r, pairsOnly(fn))
}

// ReadEntries is Read for a stream that may hold triples: pair entries go
// to to.Pairs and triple entries to to.Triples. Read checks triple
// entries but does not deliver them.
func ReadEntries(ctx context.Context, r io.Reader, fn Entries) (Header, Summary, error) {
	sr := &streamReader{r: bufio.NewReaderSize(r, 1<<16)}
	d, err := newBlockDecoder()
	if err != nil {
		return Header{}, Summary{}, err
	}
	defer d.close()

	var hb [HeaderSize]byte
	if err := sr.full(hb[:], "header"); err != nil {
		return Header{}, Summary{}, err
	}
	h, reason := parseHeader(hb[:])
	if reason != "" {
		return Header{}, Summary{}, corrupt("", 0, "%s", reason)
	}

	var (
		tot   totals
		index []indexEntry
		parts = make(map[uint32]*chainState)
	)
	for {
		if err := ctx.Err(); err != nil {
			return Header{}, Summary{}, err
		}
		off := sr.off
		kind, err := sr.r.Peek(1)
		if err != nil {
			return Header{}, Summary{}, sr.fail(err, "block or footer")
		}
		if kind[0] == kindFooter {
			break
		}
		frame := d.frameBuf(BlockHeaderSize)
		if err := sr.full(frame, "block header"); err != nil {
			return Header{}, Summary{}, err
		}
		bh, reason := parseBlockHeader(frame, h.Parts)
		if reason == "" {
			reason = triplesReason(h, bh.flags)
		}
		if reason != "" {
			return Header{}, Summary{}, corrupt("", off, "%s", reason)
		}
		frame = d.frameBuf(BlockHeaderSize + int(bh.stored))
		if err := sr.full(frame[BlockHeaderSize:], "block"); err != nil {
			return Header{}, Summary{}, err
		}
		raw, reason := d.decode(bh, frame)
		if reason != "" {
			return Header{}, Summary{}, corrupt("", off, "%s", reason)
		}
		prev := parts[bh.part]
		if prev == nil {
			prev = new(chainState)
			parts[bh.part] = prev
		}
		var first cid.CID
		reason, err = d.walk(raw, bh, prev, &first, fn)
		if err != nil {
			return Header{}, Summary{}, err
		}
		if reason != "" {
			return Header{}, Summary{}, corrupt("", off, "%s", reason)
		}
		index = append(index, indexEntry{offset: uint64(off), stored: bh.stored, part: bh.part, flags: bh.flags, first: first})
		tot.addBlock(bh)
	}

	// Footer: fixed part, then one index entry per block read, compared as
	// they stream by, then the trailer.
	footerOff := sr.off
	var fb [FooterFixedSize]byte
	if err := sr.full(fb[:], "footer"); err != nil {
		return Header{}, Summary{}, err
	}
	c := crc(fb[:])
	ftot, reason := parseFooterFixed(fb[:])
	if reason == "" && ftot != tot.disk() {
		reason = "footer totals differ from the blocks"
	}
	if reason != "" {
		return Header{}, Summary{}, corrupt("", footerOff, "%s", reason)
	}
	var eb [IndexEntrySize]byte
	for i, want := range index {
		eoff := sr.off
		if err := sr.full(eb[:], "block index"); err != nil {
			return Header{}, Summary{}, err
		}
		c = crc32.Update(c, crcTable, eb[:])
		got, reason := parseIndexEntry(eb[:])
		if reason == "" && got != want {
			reason = "index entry differs from the block read"
		}
		if reason != "" {
			return Header{}, Summary{}, corrupt("", eoff, "block %d: %s", i, reason)
		}
	}
	trailerOff := sr.off
	var tb [TrailerSize]byte
	if err := sr.full(tb[:], "trailer"); err != nil {
		return Header{}, Summary{}, err
	}
	t, reason := parseTrailer(tb[:])
	switch {
	case reason != "":
	case t.footerOff != uint64(footerOff) || t.footerLen != uint64(trailerOff-footerOff):
		reason = "trailer does not point at the footer"
	case crc32.Update(c, crcTable, tb[:16]) != t.crc:
		reason = "footer checksum mismatch"
	}
	if reason != "" {
		return Header{}, Summary{}, corrupt("", trailerOff, "%s", reason)
	}
	if _, err := sr.r.ReadByte(); err != io.EOF {
		if err != nil {
			return Header{}, Summary{}, err
		}
		return Header{}, Summary{}, corrupt("", sr.off, "data after the trailer")
	}
	return h, tot.summary(sr.off), nil
}

// streamReader tracks the offset of a sequential read.
type streamReader struct {
	r   *bufio.Reader
	off int64
}

// full reads exactly len(b) bytes; an early end is corruption.
func (s *streamReader) full(b []byte, what string) error {
	n, err := io.ReadFull(s.r, b)
	s.off += int64(n)
	if err != nil {
		return s.fail(err, what)
	}
	return nil
}

func (s *streamReader) fail(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt("", s.off, "stream ends inside the %s", what)
	}
	return err
}
