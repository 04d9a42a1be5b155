package snapshot

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/vfs"
)

// LoadFile reads the snapshot at path and calls fn for every entry: a key
// and a non-empty, strictly ascending run of its values. A key whose value
// set was split across blocks arrives in several calls, in value order;
// callers add the pairs up. vals is valid only during the call.
//
// Blocks are decoded on parallelism goroutines (GOMAXPROCS if
// parallelism <= 0), so fn is called concurrently and must be safe for
// that. The blocks of one partition that carry one key are decoded in order
// on one goroutine, so calls for the same key never overlap and arrive in
// order; otherwise calls are in no particular order.
//
// The header, trailer, footer and block index are validated before any
// block is read, and each block's lengths, checksum and entry order before
// its entries are delivered; the footer's totals are compared with the
// blocks at the end. Damage is reported as a *CorruptError
// (errors.Is(err, ErrCorrupt)) naming path and offset; fn's first error is
// returned as is; cancellation returns ctx.Err(). On any error fn may
// already have seen part of the snapshot, which the caller must discard.
func LoadFile(ctx context.Context, fs vfs.FS, path string, parallelism int,
	fn func(key cid.CID, vals []cid.CID) error) (h Header, sum Summary, err error) {
	return LoadFileEntries(ctx, fs, path, parallelism, pairsOnly(fn))
}

// LoadFileEntries is LoadFile for a snapshot that may hold triples: pair
// entries go to to.Pairs and triple entries to to.Triples, under the same
// rules. LoadFile checks triple entries but does not deliver them.
func LoadFileEntries(ctx context.Context, fs vfs.FS, path string, parallelism int,
	to Entries) (h Header, sum Summary, err error) {
	f, size, err := openFile(fs, path)
	if err != nil {
		return Header{}, Summary{}, err
	}
	defer func() { err = joinClose(err, f) }()
	return load(ctx, f, size, path, parallelism, to)
}

// VerifyFile checks the whole snapshot at path, as LoadFile does, without
// delivering its entries.
func VerifyFile(fs vfs.FS, path string) (Header, Summary, error) {
	return LoadFile(context.Background(), fs, path, 0, nil)
}

// ReadHeader returns the header of the snapshot at path. It is cheap: it
// validates the header and the trailer's magic and lengths but reads no
// block. Use VerifyFile or LoadFile to check the rest.
func ReadHeader(fs vfs.FS, path string) (h Header, err error) {
	f, size, err := openFile(fs, path)
	if err != nil {
		return Header{}, err
	}
	defer func() { err = joinClose(err, f) }()
	h, err = readHeader(f, size, path)
	if err != nil {
		return Header{}, err
	}
	if _, err = readTrailer(f, size, path); err != nil {
		return Header{}, err
	}
	return h, nil
}

// ReadFooter returns the header of the snapshot at path and the totals
// its footer declares, after checking what LoadFile checks before it reads
// any block: the header, the trailer, the footer's checksum and that the
// block index tiles the file. It reads no block, so the totals are the
// footer's claim, compared with the blocks only by LoadFile and
// VerifyFile; a loader sizes its tables from them rather than from the
// file's size, which junk or a sparse file can make as large as it likes.
// Summary.Bytes is the file size. The footer does not split its totals
// between pair and triple partitions, so Entries and Pairs count both and
// TripleKeys and Triples are 0.
func ReadFooter(fs vfs.FS, path string) (h Header, sum Summary, err error) {
	f, size, err := openFile(fs, path)
	if err != nil {
		return Header{}, Summary{}, err
	}
	defer func() { err = joinClose(err, f) }()
	h, err = readHeader(f, size, path)
	if err != nil {
		return Header{}, Summary{}, err
	}
	ft, err := readFooter(f, size, path, h)
	if err != nil {
		return Header{}, Summary{}, err
	}
	return h, ft.tot.summary(size), nil
}

func openFile(fs vfs.FS, path string) (vfs.File, int64, error) {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, 0, errors.Join(err, f.Close())
	}
	return f, st.Size(), nil
}

func joinClose(err error, f vfs.File) error {
	if cerr := f.Close(); cerr != nil && err == nil {
		return cerr
	}
	return err
}

// readAt reads exactly len(b) bytes at off; a short file is corruption.
func readAt(r io.ReaderAt, b []byte, off int64, file, what string) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corrupt(file, off, "truncated %s", what)
	}
	return err
}

func readHeader(r io.ReaderAt, size int64, file string) (Header, error) {
	if size < HeaderSize+TrailerSize {
		return Header{}, corrupt(file, 0, "file of %d bytes is too short", size)
	}
	var b [HeaderSize]byte
	if err := readAt(r, b[:], 0, file, "header"); err != nil {
		return Header{}, err
	}
	h, reason := parseHeader(b[:])
	if reason != "" {
		return Header{}, corrupt(file, 0, "%s", reason)
	}
	return h, nil
}

func readTrailer(r io.ReaderAt, size int64, file string) (trailer, error) {
	off := size - TrailerSize
	var b [TrailerSize]byte
	if err := readAt(r, b[:], off, file, "trailer"); err != nil {
		return trailer{}, err
	}
	t, reason := parseTrailer(b[:])
	if reason != "" {
		return t, corrupt(file, off, "%s", reason)
	}
	if t.footerLen > uint64(size) || t.footerOff != uint64(size)-TrailerSize-t.footerLen {
		return t, corrupt(file, off, "footer position does not match the file size")
	}
	return t, nil
}

// footer is a validated footer.
type footer struct {
	off   int64
	tot   totals
	index []indexEntry
}

// indexChunk is how many block index entries readFooter reads at a time.
const indexChunk = 1024

// readFooter reads and validates the footer and block index: lengths
// against the file size, the checksum, and that the blocks tile the space
// between header and footer with each partition's first keys in order.
//
// The index is read indexChunk entries at a time and each entry is checked
// as it arrives, so the memory it takes follows the entries that
// validate, not the length the trailer claims: a trailer claiming a
// footer of gigabytes over a sparse or damaged file fails at its first
// bad entry, having read a few KiB. The checksum covers the whole footer
// and is compared last.
func readFooter(r io.ReaderAt, size int64, file string, h Header) (footer, error) {
	t, err := readTrailer(r, size, file)
	if err != nil {
		return footer{}, err
	}
	off := int64(t.footerOff)
	var fb [FooterFixedSize]byte
	if err := readAt(r, fb[:], off, file, "footer"); err != nil {
		return footer{}, err
	}
	c := crc(fb[:])
	tot, reason := parseFooterFixed(fb[:])
	if reason != "" {
		return footer{}, corrupt(file, off, "%s", reason)
	}
	nblocks := (t.footerLen - FooterFixedSize) / IndexEntrySize
	if tot.blocks != nblocks {
		return footer{}, corrupt(file, off, "footer block count differs from its index")
	}
	if tot.raw/MaxBlockSize > nblocks || tot.pairs > tot.raw/cid.Size || tot.keys > tot.pairs {
		return footer{}, corrupt(file, off, "footer totals out of range")
	}
	ft := footer{off: off, tot: tot}
	next := uint64(HeaderSize)
	// last[p] is the index of partition p's latest block so far, +1.
	last := make(map[uint32]int)
	chunk := make([]byte, min(nblocks, indexChunk)*IndexEntrySize)
	for i := 0; uint64(i) < nblocks; {
		b := chunk[:min(nblocks-uint64(i), indexChunk)*IndexEntrySize]
		boff := off + FooterFixedSize + int64(i)*IndexEntrySize
		if err := readAt(r, b, boff, file, "block index"); err != nil {
			return footer{}, err
		}
		c = crc32.Update(c, crcTable, b)
		for ; len(b) > 0; i, b = i+1, b[IndexEntrySize:] {
			e, reason := parseIndexEntry(b)
			if reason == "" {
				reason = triplesReason(h, e.flags)
			}
			eoff := off + FooterFixedSize + int64(i)*IndexEntrySize
			if reason != "" {
				return footer{}, corrupt(file, eoff, "%s", reason)
			}
			switch {
			case e.offset != next:
				return footer{}, corrupt(file, eoff, "block %d is not where the previous one ends", i)
			case e.stored > MaxBlockSize:
				return footer{}, corrupt(file, eoff, "block %d length exceeds maximum", i)
			case uint64(e.part) >= uint64(h.Parts):
				return footer{}, corrupt(file, eoff, "block %d partition out of range", i)
			}
			next += BlockHeaderSize + uint64(e.stored)
			if next > t.footerOff {
				return footer{}, corrupt(file, eoff, "block %d overlaps the footer", i)
			}
			if j, ok := last[e.part]; ok {
				order := cid.Compare(ft.index[j-1].first, e.first)
				if order > 0 || (order == 0 && e.flags&flagCont == 0) {
					return footer{}, corrupt(file, eoff, "block %d first key out of order", i)
				}
				// Runs of a partition are decoded apart, so only the
				// index sees that they are all pairs or all triples.
				if (ft.index[j-1].flags^e.flags)&flagTriples != 0 {
					return footer{}, corrupt(file, eoff, "block %d: partition mixes pair and triple blocks", i)
				}
			} else if e.flags&flagCont != 0 {
				return footer{}, corrupt(file, eoff, "block %d continues no block", i)
			}
			last[e.part] = i + 1
			ft.index = append(ft.index, e)
		}
	}
	var tb [16]byte // the trailer's first 16 bytes, which the checksum covers
	le.PutUint64(tb[0:8], t.footerOff)
	le.PutUint64(tb[8:16], t.footerLen)
	if crc32.Update(c, crcTable, tb[:]) != t.crc {
		return footer{}, corrupt(file, off, "footer checksum mismatch")
	}
	if next != t.footerOff {
		return footer{}, corrupt(file, off, "blocks do not end where the footer starts")
	}
	return ft, nil
}

// work is a run of consecutive blocks of one partition where each block
// after the first continues the previous block's last key. A run is
// decoded in order by one goroutine. next is the index of the partition's
// block after the run, or -1.
type work struct {
	blocks []int
	next   int
}

// plan splits the index into runs.
func plan(index []indexEntry) []work {
	var runs []work
	open := make(map[uint32]int) // partition -> its latest run, +1
	for i, e := range index {
		j, ok := open[e.part]
		if ok && e.flags&flagCont != 0 {
			runs[j-1].blocks = append(runs[j-1].blocks, i)
			continue
		}
		if ok {
			runs[j-1].next = i
		}
		runs = append(runs, work{blocks: []int{i}, next: -1})
		open[e.part] = len(runs)
	}
	return runs
}

// load implements LoadFile over any io.ReaderAt of the given size.
func load(ctx context.Context, r io.ReaderAt, size int64, file string, parallelism int,
	fn Entries) (Header, Summary, error) {
	if err := ctx.Err(); err != nil {
		return Header{}, Summary{}, err
	}
	h, err := readHeader(r, size, file)
	if err != nil {
		return Header{}, Summary{}, err
	}
	ft, err := readFooter(r, size, file, h)
	if err != nil {
		return Header{}, Summary{}, err
	}
	runs := plan(ft.index)
	if parallelism <= 0 {
		parallelism = runtime.GOMAXPROCS(0)
	}
	var (
		mu  sync.Mutex
		tot totals
	)
	type worker struct {
		d   *blockDecoder
		tot totals
	}
	err = parallel(ctx, len(runs), min(parallelism, len(runs)),
		func() (*worker, error) {
			d, err := newBlockDecoder()
			return &worker{d: d}, err
		},
		func(ctx context.Context, w *worker, i int) error {
			return w.d.loadRun(ctx, r, file, ft.index, runs[i], &w.tot, fn)
		},
		func(w *worker) {
			w.d.close()
			mu.Lock()
			tot.add(w.tot)
			mu.Unlock()
		})
	if err != nil {
		return Header{}, Summary{}, err
	}
	if tot.disk() != ft.tot {
		return Header{}, Summary{}, corrupt(file, ft.off, "footer totals differ from the blocks")
	}
	return h, tot.summary(size), nil
}

// loadRun reads, checks and delivers the blocks of one run.
func (d *blockDecoder) loadRun(ctx context.Context, r io.ReaderAt, file string, index []indexEntry,
	run work, tot *totals, fn Entries) error {
	var prev chainState
	for k, i := range run.blocks {
		if k > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := index[i]
		off := int64(e.offset)
		// The frame header is checked before the stored bytes are read,
		// so a block that is not one costs no buffer of the length its
		// index entry claims.
		frame := d.frameBuf(BlockHeaderSize)
		if err := readAt(r, frame, off, file, "block"); err != nil {
			return err
		}
		bh, reason := parseBlockHeader(frame, MaxParts)
		if reason == "" && (bh.part != e.part || bh.flags != e.flags || bh.stored != e.stored) {
			reason = "block header differs from its index entry"
		}
		if reason != "" {
			return corrupt(file, off, "%s", reason)
		}
		frame = d.frameBuf(BlockHeaderSize + int(e.stored))
		if err := readAt(r, frame[BlockHeaderSize:], off+BlockHeaderSize, file, "block"); err != nil {
			return err
		}
		raw, reason := d.decode(bh, frame)
		if reason != "" {
			return corrupt(file, off, "%s", reason)
		}
		var firstKey cid.CID
		reason, err := d.walk(raw, bh, &prev, &firstKey, fn)
		if err != nil {
			return err
		}
		if reason == "" && firstKey != e.first {
			reason = "first key differs from the block index"
		}
		if reason == "" && k == len(run.blocks)-1 && run.next >= 0 {
			// The partition's next block starts a new key.
			if cid.Compare(prev.key, index[run.next].first) >= 0 {
				reason = "keys out of order across blocks"
			}
		}
		if reason == "" && k < len(run.blocks)-1 && prev.key != index[run.blocks[k+1]].first {
			reason = "continued key differs from the next block's first key"
		}
		if reason != "" {
			return corrupt(file, off, "%s", reason)
		}
		tot.addBlock(bh)
	}
	return nil
}
