package snapshot

import (
	"bytes"
	"encoding/binary"

	"github.com/klauspost/compress/zstd"

	"github.com/cidstore/cidstore/cid"
)

// blockDecoder checks and decodes blocks. Each decoding goroutine owns one;
// its zstd decoder and buffers are reused for every block, so it holds at
// most about three blocks' worth of memory however the input is crafted.
type blockDecoder struct {
	zdec  *zstd.Decoder
	frame []byte    // block frame as read: header + stored bytes
	raw   []byte    // decompressed entries
	vals  []cid.CID // values of the entry being delivered
}

func newBlockDecoder() (*blockDecoder, error) {
	zdec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxBlockSize),
		zstd.WithDecoderMaxWindow(MaxBlockSize),
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		return nil, err
	}
	return &blockDecoder{zdec: zdec}, nil
}

func (d *blockDecoder) close() { d.zdec.Close() }

// frameBuf returns d.frame resized to n bytes, reusing its storage and
// keeping its current contents. The caller has bounded n by
// BlockHeaderSize+MaxBlockSize.
func (d *blockDecoder) frameBuf(n int) []byte {
	if cap(d.frame) < n {
		f := make([]byte, n)
		copy(f, d.frame)
		d.frame = f
	}
	d.frame = d.frame[:n]
	return d.frame
}

// decode verifies the checksum of a block frame (header already parsed
// into h) and returns its uncompressed entries. The result aliases d's
// buffers and is valid until the next call. It returns a reason on failure.
func (d *blockDecoder) decode(h blockHeader, frame []byte) ([]byte, string) {
	stored := frame[BlockHeaderSize:]
	if blockCRC(frame, stored) != h.crc {
		return nil, "block checksum mismatch"
	}
	if h.codec == codecRaw {
		return stored, ""
	}
	if cap(d.raw) < int(h.rawLen) {
		d.raw = make([]byte, 0, h.rawLen)
	}
	out, err := d.zdec.DecodeAll(stored, d.raw[:0:h.rawLen])
	if err != nil {
		return nil, "block does not decompress: " + err.Error()
	}
	if len(out) != int(h.rawLen) {
		return nil, "decompressed block length differs from its header"
	}
	return out, ""
}

// chainState carries the last key and value of a partition's previous
// block into the next one, for order checks across blocks.
type chainState struct {
	key     cid.CID
	val     [2 * cid.Size]byte // the last value; its first width bytes
	triples bool               // the partition holds triples
	valid   bool
}

// Entries receives the entries of a snapshot. Pairs gets each entry of a
// pair partition: a key and a non-empty, strictly ascending run of its
// values. Triples gets each entry of a triple partition: a key and its
// values flattened, two CIDs per value (the second and third components
// of a triple in the index's rotation), ascending as pairs. A nil
// function skips those entries (they are still checked). Slices are
// valid only during the call.
type Entries struct {
	Pairs   func(key cid.CID, vals []cid.CID) error
	Triples func(key cid.CID, vals []cid.CID) error
}

// pairsOnly wraps a pair callback.
func pairsOnly(fn func(cid.CID, []cid.CID) error) Entries { return Entries{Pairs: fn} }

// walk checks the entries of a decoded block and then calls fn for each.
// The block must hold exactly h.entries entries and h.pairs values in raw;
// keys strictly ascend, values of an entry strictly ascend. prev is the
// state after the previous block of the same partition, if known: a block
// with flagCont must start with prev.key and a first value above prev.val;
// any other block must start above prev.key. On return prev holds the last
// key and value of this block and first the block's first key. The whole
// block is checked before fn sees any of it. fn may be nil. walk returns a
// reason for bad data, or fn's error.
func (d *blockDecoder) walk(raw []byte, h blockHeader, prev *chainState, first *cid.CID,
	to Entries) (string, error) {
	if reason := check(raw, h, prev, first); reason != "" {
		return reason, nil
	}
	fn, per := to.Pairs, uint64(1) // CIDs per value
	if h.flags&flagTriples != 0 {
		fn, per = to.Triples, 2
	}
	if fn == nil {
		return "", nil
	}
	// The structure is known to be sound: deliver.
	for len(raw) > 0 {
		key := cid.CID(raw[:cid.Size])
		n, w := binary.Uvarint(raw[cid.Size:])
		raw = raw[cid.Size+w:]
		n *= per
		if cap(d.vals) < int(n) {
			d.vals = make([]cid.CID, n)
		}
		vals := d.vals[:n]
		for j := range vals {
			vals[j] = cid.CID(raw[j*cid.Size:])
		}
		raw = raw[n*cid.Size:]
		if err := fn(key, vals); err != nil {
			return "", err
		}
	}
	return "", nil
}

// check validates the entries of a block for walk without copying them.
func check(raw []byte, h blockHeader, prev *chainState, first *cid.CID) string {
	cont := h.flags&flagCont != 0
	triples := h.flags&flagTriples != 0
	width := valueWidth(h.flags)
	if prev.valid && prev.triples != triples {
		return "partition mixes pair and triple blocks"
	}
	pairs := uint64(0)
	var key, val []byte
	for i := uint32(0); i < h.entries; i++ {
		if len(raw) < cid.Size {
			return "block ends inside an entry"
		}
		k := raw[:cid.Size]
		raw = raw[cid.Size:]
		n, w := binary.Uvarint(raw)
		if w <= 0 {
			return "bad value count"
		}
		raw = raw[w:]
		if n == 0 || n > uint64(len(raw))/uint64(width) {
			return "value count out of range"
		}
		if pairs += n; pairs > uint64(h.pairs) {
			return "block holds more pairs than its header says"
		}
		if i == 0 {
			*first = cid.CID(k)
			switch {
			case cont && (!prev.valid || *first != prev.key):
				return "continuation block does not continue the previous key"
			case cont && bytes.Compare(prev.val[:width], raw[:width]) >= 0:
				return "values out of order across blocks"
			case !cont && prev.valid && bytes.Compare(prev.key[:], k) >= 0:
				return "keys out of order across blocks"
			}
		} else if bytes.Compare(key, k) >= 0 {
			return "keys out of order"
		}
		key = k
		vals := raw[:n*uint64(width)]
		raw = raw[n*uint64(width):]
		for j := width; j < len(vals); j += width {
			if bytes.Compare(vals[j-width:j], vals[j:j+width]) >= 0 {
				return "values out of order"
			}
		}
		val = vals[len(vals)-width:]
	}
	if len(raw) != 0 {
		return "trailing bytes in block"
	}
	if pairs != uint64(h.pairs) {
		return "block holds fewer pairs than its header says"
	}
	prev.key, prev.triples, prev.valid = cid.CID(key), triples, true
	copy(prev.val[:], val)
	return ""
}
