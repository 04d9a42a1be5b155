package snapshot

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/vfs"
)

// A Part is one partition's entries in ascending key order, each with its
// value set in ascending order without duplicates. The values slice is only
// valid during the call to yield: producers may reuse its buffer. Keys with
// an empty value set are skipped.
type Part = iter.Seq2[cid.CID, []cid.CID]

// Header describes a snapshot.
type Header struct {
	// LSN is the log sequence number of the cut: the snapshot holds every
	// write with an LSN up to and including it.
	LSN uint64
	// Parts is the number of partitions (shards) the snapshot was written
	// from.
	Parts int
	// Created is when the snapshot was taken (nanosecond precision).
	Created time.Time
	// Triples is the number of triple partitions, the last ones of
	// Parts (see Write). A snapshot with triple partitions is written as
	// Version, one without as VersionPairs. Readers leave it 0: a triple
	// partition is known by its blocks.
	Triples int

	// pairsOnly is set by the readers for a file of VersionPairs, which
	// cannot hold triple blocks.
	pairsOnly bool
}

// Summary counts what a snapshot holds.
type Summary struct {
	// Entries is the number of distinct keys (a key whose value set is
	// split across blocks counts once); Pairs the number of (key, value)
	// pairs; Blocks the number of blocks.
	Entries, Pairs, Blocks int64
	// TripleKeys and Triples count the keys and triples of the triple
	// partitions (which Entries and Pairs do not include).
	TripleKeys, Triples int64
	// Bytes is the size of the encoded snapshot (written, or read).
	Bytes int64
	// RawBytes is the total uncompressed length of all blocks.
	RawBytes int64
}

// compressMinSaving is the fraction of a block (1/8) that compression must
// save for the block to be stored compressed.
const compressMinSaving = 8

// maxSkip bounds how many blocks an encoder stores raw without trying to
// compress them after blocks of a partition in a row did not compress:
// after n misses it skips n-1 blocks, at most maxSkip, and tries again.
// Random CIDs do not compress, and trying costs about a quarter of the
// encoding time.
const maxSkip = 7

// Write encodes a snapshot of parts to w: the header, then the blocks of all
// partitions, then the footer. Partitions are encoded in parallel on up to
// GOMAXPROCS goroutines; blocks of different partitions are interleaved in
// w in any order, blocks of one partition appear in order. Writes to w are
// serialised, so w need not be safe for concurrent use.
//
// h.Parts must be 0 (meaning len(parts)) or len(parts); a zero h.Created is
// replaced by the current time. The last h.Triples parts are triple
// partitions: each value is two CIDs wide, and a part yields a key's
// values flattened (second, third, second, third, ...), ascending as
// pairs, so len(vals) is even. Write fails if a partition yields keys out
// of order or an unsorted value set. It stops early and returns ctx.Err()
// when ctx is cancelled; w then holds a partial snapshot that readers
// reject.
func Write(ctx context.Context, w io.Writer, h Header, parts []Part, opts ...Option) (Summary, error) {
	return write(ctx, w, h, parts, BlockTarget, opts...)
}

// Option adjusts Write and WriteFile.
type Option func(*writeOptions)

type writeOptions struct {
	parallelism int
	pace        func(ctx context.Context, n int) error
	yield       func()
}

// WithPacer has WriteFile call pace after writing each n bytes to the
// file; pace may wait (to bound the write bandwidth) and returns an error
// to stop the write, such as ctx.Err().
func WithPacer(pace func(ctx context.Context, n int) error) Option {
	return func(o *writeOptions) { o.pace = pace }
}

// WithYield has the encoders call yield, instead of runtime.Gosched, at
// the points where they give other goroutines a turn (every 1024 keys,
// between the 128 KiB pieces of a block's compression, and after each
// block). A store passes a function that waits while its
// WAL flusher is in fsync, so that the encoders do not hold the processor
// the flusher's writers need.
func WithYield(yield func()) Option { return func(o *writeOptions) { o.yield = yield } }

// WithParallelism bounds the number of encoding goroutines (default
// GOMAXPROCS). A store checkpointing under live traffic leaves a core to
// its writers.
func WithParallelism(n int) Option { return func(o *writeOptions) { o.parallelism = n } }

// write implements Write with blocks filled up to target bytes; tests use
// small targets to get many blocks from little data.
func write(ctx context.Context, w io.Writer, h Header, parts []Part, target int, opts ...Option) (Summary, error) {
	o := writeOptions{parallelism: runtime.GOMAXPROCS(0), yield: runtime.Gosched}
	for _, opt := range opts {
		opt(&o)
	}
	// A block must have room for at least one value.
	target = max(target, 3*cid.Size+binary.MaxVarintLen32)
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}
	if h.Parts == 0 {
		h.Parts = len(parts)
	}
	if h.Parts != len(parts) {
		return Summary{}, fmt.Errorf("snapshot: header declares %d partitions but %d were given", h.Parts, len(parts))
	}
	if h.Triples < 0 || h.Triples > h.Parts {
		return Summary{}, fmt.Errorf("snapshot: %d triple partitions of %d", h.Triples, h.Parts)
	}
	if h.Parts > MaxParts {
		return Summary{}, fmt.Errorf("snapshot: %d partitions exceed the maximum of %d", h.Parts, MaxParts)
	}
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	s := &sink{w: w}
	if err := s.write(appendHeader(nil, h)); err != nil {
		return Summary{}, err
	}

	workers := max(1, min(o.parallelism, len(parts)))
	err := parallel(ctx, len(parts), workers,
		func() (*encoder, error) { return newEncoder(s, target, o.yield) },
		func(ctx context.Context, e *encoder, i int) error {
			return e.encodePart(ctx, uint32(i), parts[i], i >= len(parts)-h.Triples)
		},
		(*encoder).close)
	if err != nil {
		return Summary{}, err
	}
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}
	return s.finish()
}

// WriteFile writes a snapshot to path atomically (vfs.WriteFileAtomic): it
// writes path+".tmp" (mode 0600, replacing any leftover), fsyncs and closes
// it, renames it over path and fsyncs the directory. On any failure or
// cancellation the temporary file is removed and path is left untouched;
// every error from write, fsync, close, rename and remove is returned.
func WriteFile(ctx context.Context, fs vfs.FS, path string, h Header, parts []Part, opts ...Option) (sum Summary, err error) {
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	err = vfs.WriteFileAtomic(fs, path, path+".tmp", func(f vfs.File) error {
		sa := newSyncAhead(ctx, f, o.pace)
		var err error
		sum, err = Write(ctx, sa, h, parts, opts...)
		if werr := sa.wait(); err == nil {
			err = werr
		}
		if err == nil {
			err = ctx.Err()
		}
		return err
	})
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// sink serialises writes to the output and builds the block index.
type sink struct {
	mu    sync.Mutex
	w     io.Writer
	off   uint64
	err   error
	index []indexEntry
	tot   totals
}

// write writes b; the caller holds mu or is the only user.
func (s *sink) write(b []byte) error {
	if s.err != nil {
		return s.err
	}
	n, err := s.w.Write(b)
	s.off += uint64(n)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = err
	}
	return err
}

// writeBlock writes one block frame and records it in the index.
func (s *sink) writeBlock(frame []byte, e indexEntry, h blockHeader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.offset = s.off
	if err := s.write(frame); err != nil {
		return err
	}
	s.index = append(s.index, e)
	s.tot.addBlock(h)
	return nil
}

// finish writes the footer and the trailer.
func (s *sink) finish() (Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	footerOff := s.off
	buf := make([]byte, 0, FooterFixedSize+len(s.index)*IndexEntrySize+TrailerSize)
	buf = appendFooterFixed(buf, s.tot)
	for _, e := range s.index {
		buf = appendIndexEntry(buf, e)
	}
	footerLen := uint64(len(buf))
	buf = appendTrailer(buf, footerOff, footerLen, crc(buf))
	if err := s.write(buf); err != nil {
		return Summary{}, err
	}
	return s.tot.summary(int64(s.off)), nil
}

// encoder turns partitions into block frames. Each encoding goroutine owns
// one, with its own zstd encoder and buffers, reused for every block.
type encoder struct {
	ctx    context.Context // of the partition being encoded
	s      *sink
	zenc   *zstd.Encoder
	target int          // uncompressed block size to fill up to
	yield  func()       // gives other goroutines a turn
	raw    []byte       // frame being built: header slot + entries
	z      []byte       // compressed frame: header slot + zstd frame
	zw     appendWriter // where compress writes the frame
	misses int          // consecutive blocks that did not compress
	skip   int          // blocks left to store raw without trying zstd

	// state of the block being built
	part    uint32
	width   int   // value width: cid.Size, or 2*cid.Size in a triple part
	kind    uint8 // flagTriples in a triple partition, else 0
	flags   uint8
	first   cid.CID
	entries uint32
	pairs   uint32
}

// yieldEntries is how many keys an encoder adds between checks for
// cancellation and yields: about
// 64 KiB, a few hundred microseconds.
const yieldEntries = 1024

func newEncoder(s *sink, target int, yield func()) (*encoder, error) {
	zenc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(BlockTarget),
	)
	if err != nil {
		return nil, err
	}
	return &encoder{
		s:      s,
		zenc:   zenc,
		target: target,
		yield:  yield,
		raw:    make([]byte, BlockHeaderSize, BlockHeaderSize+target),
	}, nil
}

func (e *encoder) close() { e.zenc.Close() }

// zstdChunk is how much of a block the encoder compresses between yields:
// one zstd block. Compressing a whole 1 MiB block at once took up to 10 ms
// without a yield under load, long enough to hold a P from the store's
// writers until the scheduler preempted it.
const zstdChunk = 128 << 10

// compress returns a BlockHeaderSize slot followed by src as one zstd
// frame (with its content size), in e.z's storage. The encoder is in
// synchronous mode, so each Write of a whole zstd block compresses it on
// this goroutine; the encoder yields between blocks.
func (e *encoder) compress(src []byte) ([]byte, error) {
	e.zw.b = append(e.z[:0], make([]byte, BlockHeaderSize)...)
	e.zenc.ResetContentSize(&e.zw, int64(len(src)))
	for len(src) > 0 {
		n := min(len(src), zstdChunk)
		if _, err := e.zenc.Write(src[:n]); err != nil {
			return nil, fmt.Errorf("snapshot: compress block: %w", err)
		}
		if src = src[n:]; len(src) > 0 {
			e.yield()
		}
	}
	if err := e.zenc.Close(); err != nil {
		return nil, fmt.Errorf("snapshot: compress block: %w", err)
	}
	return e.zw.b, nil
}

// appendWriter is an io.Writer that appends to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// encodePart encodes one partition into blocks and writes them. It stops
// when ctx is done (cancelled, or another encoder failed).
func (e *encoder) encodePart(ctx context.Context, part uint32, p Part, triples bool) error {
	e.ctx = ctx
	e.part = part
	e.kind = 0
	if triples {
		e.kind = flagTriples
	}
	e.width = valueWidth(e.kind)
	w := e.width / cid.Size // CIDs per value
	e.misses, e.skip = 0, 0
	e.reset(0)
	var (
		prev    cid.CID
		hasPrev bool
		err     error
		n       int
	)
	for k, vals := range p {
		if len(vals) == 0 {
			continue
		}
		if hasPrev && cid.Compare(prev, k) >= 0 {
			err = fmt.Errorf("snapshot: partition %d: key %s does not follow %s", part, k, prev)
			break
		}
		if len(vals)%w != 0 {
			err = fmt.Errorf("snapshot: partition %d: key %s has %d CIDs, not whole triples", part, k, len(vals))
			break
		}
		for i := w; i < len(vals); i += w {
			if compareValues(vals[i-w:i], vals[i:i+w]) >= 0 {
				err = fmt.Errorf("snapshot: partition %d: values of key %s are not strictly ascending", part, k)
				break
			}
		}
		if err != nil {
			break
		}
		prev, hasPrev = k, true
		if n++; n%yieldEntries == 0 {
			if err = e.check(); err != nil {
				break
			}
			// See flush: a block takes milliseconds to fill, and while
			// the store's WAL flusher sits in fsync this encoder may hold
			// the only other P.
			e.yield()
		}
		if err = e.addKey(k, vals); err != nil {
			break
		}
	}
	if err == nil && e.entries > 0 {
		err = e.flush(0)
	}
	return err
}

// check reports cancellation or another encoder's failure.
func (e *encoder) check() error { return e.ctx.Err() }

// reset starts a new, empty block with the given flags.
func (e *encoder) reset(flags uint8) {
	e.raw = e.raw[:BlockHeaderSize]
	e.flags = flags | e.kind
	e.entries, e.pairs = 0, 0
}

// addKey appends key k with values vals, splitting the value set over as
// many blocks as needed so that no block exceeds the target size.
func (e *encoder) addKey(k cid.CID, vals []cid.CID) error {
	for len(vals) > 0 {
		room := e.target - (len(e.raw) - BlockHeaderSize) - cid.Size - binary.MaxVarintLen32
		fit := room / e.width
		w := e.width / cid.Size
		if fit < 1 {
			// Not even one value fits: the key has not been started in
			// this block (a continuation always begins an empty one).
			if err := e.flush(0); err != nil {
				return err
			}
			continue
		}
		n := min(len(vals)/w, fit)
		if e.entries == 0 {
			e.first = k
		}
		e.raw = append(e.raw, k[:]...)
		e.raw = binary.AppendUvarint(e.raw, uint64(n))
		for i := range vals[:n*w] {
			e.raw = append(e.raw, vals[i][:]...)
		}
		e.entries++
		e.pairs += uint32(n)
		vals = vals[n*w:]
		if len(vals) > 0 {
			if err := e.flush(flagCont); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush compresses (when that pays) and writes the current block, then
// starts a new one with nextFlags.
func (e *encoder) flush(nextFlags uint8) error {
	if err := e.check(); err != nil {
		return err
	}
	rawLen := len(e.raw) - BlockHeaderSize
	h := blockHeader{
		codec:   codecRaw,
		flags:   e.flags,
		part:    e.part,
		entries: e.entries,
		pairs:   e.pairs,
		rawLen:  uint32(rawLen),
		stored:  uint32(rawLen),
	}
	frame := e.raw
	if e.skip > 0 {
		e.skip--
	} else {
		z, err := e.compress(e.raw[BlockHeaderSize:])
		if err != nil {
			return err
		}
		e.z = z
		if zl := len(e.z) - BlockHeaderSize; zl <= rawLen-rawLen/compressMinSaving && zl < rawLen {
			h.codec, h.stored = codecZstd, uint32(zl)
			frame = e.z
			e.misses = 0
		} else {
			e.misses++
			e.skip = min(e.misses-1, maxSkip)
		}
	}
	putBlockHeader(frame, h)
	ie := indexEntry{stored: h.stored, part: e.part, flags: e.flags, first: e.first}
	if err := e.s.writeBlock(frame, ie, h); err != nil {
		return err
	}
	e.reset(nextFlags)
	// Encoding is pure CPU; without a yield per block, encoders could
	// hold every P until the scheduler's 10 ms preemption and stall the
	// store's writers behind a checkpoint.
	e.yield()
	return nil
}
