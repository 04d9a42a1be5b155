// Package snapshot reads and writes snapshots: compressed, checksummed,
// point-in-time images of a whole CIDStore, a map from key CID to a sorted
// set of value CIDs and a set of triples (held as its SPO index: subject
// -> sorted set of (predicate, object) pairs). A snapshot is a file in the store's directory or a
// stream (export and import use the same bytes).
//
// Write encodes one Part (an ordered iterator) per shard, in parallel, and
// WriteFile makes the result durable atomically. LoadFile decodes a file in
// parallel by block; Read imports a non-seekable stream sequentially;
// VerifyFile checks everything; ReadHeader reads only the header;
// ReadFooter checks the header and footer and returns the footer's totals.
//
// # Directory layout
//
// A store keeps snapshot files named by the LSN of their cut (Name,
// ParseName):
//
//	00000000000000004711.snap      snapshot with cut LSN 4711 (mode 0600)
//	00000000000000004711.snap.tmp  being written; removed on failure
//
// WriteFile writes the temporary name, fsyncs it, renames it into place and
// fsyncs the directory, so a crash leaves the old file set or the new one.
//
// # File format
//
// All integers are little endian. A CID is 32 raw bytes. A file is a
// header, zero or more block frames back to back, a footer and a trailer:
//
//	header | block | block | ... | footer | trailer
//
// Header (HeaderSize = 36 bytes):
//
//	offset  size  field
//	0       8     magic "CIDSNAP1"
//	8       2     version, uint16: 1 without triple partitions, 2 with
//	              (version 1 readers refuse a file with triples; a
//	              triple block in a version 1 file is corrupt)
//	10      2     reserved, 0
//	12      4     parts    uint32: partition (shard) count, at most MaxParts
//	16      8     lsn      uint64: cut LSN
//	24      8     created  int64: creation time, Unix nanoseconds
//	32      4     crc      uint32: CRC-32C (Castagnoli) of bytes 0..31
//
// Block frame (BlockHeaderSize = 28 bytes, then the stored bytes):
//
//	offset  size  field
//	0       1     kind     'B'
//	1       1     codec    0 = raw, 1 = zstd
//	2       1     flags    bit 0: continuation (see below); bit 1: the
//	                       block belongs to a triple partition, so each
//	                       value is 64 bytes wide; others 0
//	3       1     reserved, 0
//	4       4     part     uint32: partition, < parts
//	8       4     entries  uint32: entries in the block, >= 1
//	12      4     pairs    uint32: values in the block, >= entries
//	16      4     length   uint32: uncompressed length, <= MaxBlockSize
//	20      4     stored   uint32: stored length; = length when raw,
//	                       < length when zstd
//	24      4     crc      uint32: CRC-32C of bytes 0..23 and the stored
//	                       bytes
//	28      stored         the entries, raw or as one zstd frame
//
// The uncompressed bytes of a block are its entries back to back, with no
// padding:
//
//	key     32 bytes
//	count   uvarint, >= 1
//	values  count * 32 bytes, strictly ascending
//
// In a block of a triple partition (flag bit 1) each value is 64 bytes:
// the second and third components of a triple, 32 bytes each, and values
// ascend as 64-byte strings. The store writes its SPO index there: key the
// subject, values (predicate, object); POS and OSP are rebuilt from it at
// load, which keeps the file a third of three sections' size and loads
// faster than decoding three. Triple partitions come after the pair
// partitions, a partition's blocks are all of one kind, and the header's
// parts count includes both.
//
// A block holds entries of one partition with strictly ascending keys, and
// the blocks of a partition appear in the file in key order (blocks of
// different partitions interleave in any order). The writer fills a block
// up to BlockTarget (1 MiB) uncompressed bytes; a key whose values do not
// fit is split: the block ends with the first run of its values and the
// next block of the partition, flagged as a continuation, starts with the
// same key and the following values, and so on. Loading just adds pairs, so
// a split is invisible to a loader that inserts what it is given. Readers
// accept blocks up to MaxBlockSize (4 MiB).
//
// Each block is compressed with zstd at the fastest level and stored
// compressed only if that saves at least 1/8 of its length; blocks of
// random CIDs usually do not compress and are stored raw, which costs no
// decoding time. After n blocks of a partition in a row fail to compress,
// the writer stores the next min(n-1, 7) raw without trying.
//
// Footer (FooterFixedSize = 40 bytes, then the block index):
//
//	offset  size  field
//	0       1     kind     'F'
//	1       7     reserved, 0
//	8       8     keys     uint64: distinct keys (entries minus
//	                       continuation blocks), triple keys included
//	16      8     pairs    uint64: (key, value) pairs, triples included
//	24      8     blocks   uint64: block count
//	32      8     raw      uint64: sum of the blocks' uncompressed lengths
//	40      blocks * 52    block index, one entry per block in file order
//
// Block index entry (IndexEntrySize = 52 bytes):
//
//	offset  size  field
//	0       8     offset   uint64: file offset of the block frame
//	8       4     stored   uint32: stored length (as in the frame)
//	12      4     part     uint32: partition (as in the frame)
//	16      1     flags    as in the frame
//	17      3     reserved, 0
//	20      32    first    first key of the block
//
// Trailer (TrailerSize = 32 bytes, the last bytes of the file):
//
//	offset  size  field
//	0       8     footer offset  uint64
//	8       8     footer length  uint64 (fixed part and index)
//	16      4     crc            uint32: CRC-32C of the footer bytes
//	                             followed by trailer bytes 0..15
//	20      4     reserved, 0
//	24      8     magic "CIDSNAP1"
//
// # Validation
//
// Nothing read from a file is trusted before it is checked, and no length
// is allocated before it is bounded by content that validated, never by
// the file's size alone (a sparse or junk file can be any size). A file
// reader reads the header and the trailer, checks that the footer length
// is 40 + 52*n and that footer and trailer end exactly at the end of the
// file, and reads the footer's fixed part. It then reads the index 1024
// entries at a time, checking each as it arrives, so it holds only entries
// that validated: the index entries must tile the file (the first block
// starts right after the header, each next one where the previous ends,
// the last one ends at the footer); stored lengths are at most
// MaxBlockSize; partitions are below the header's count; first keys of a
// partition do not descend and are equal only for a continuation. The
// footer's checksum, which covers the whole footer, is compared last.
// Each block frame's header is read and checked against its index entry
// and its own bounds (lengths, counts, codec) before its stored bytes are
// read and their checksum compared, then decompressed by a zstd decoder
// limited to MaxBlockSize into a buffer of exactly the declared length,
// and its entries are parsed with every count bounded by the bytes left.
// Keys and values must ascend as described above, also across the blocks
// of a partition. Finally the footer's totals must equal the sums over the
// blocks. ReadFooter stops before the blocks, so its totals are the
// footer's claim; a loader that sizes its tables from them should also
// bound them by the bytes the file occupies on disk (vfs.DiskUsage).
//
// A streaming reader checks the same per-block rules as it goes and then
// requires the footer's index to describe exactly the blocks it read.
//
// Any violation is a *CorruptError (errors.Is(err, ErrCorrupt)) naming the
// file and the offset of the damaged header, block, footer entry or
// trailer. A decoding goroutine holds at most a few blocks' worth of
// memory (frame, uncompressed bytes, values) whatever the input.
//
// # Concurrency
//
// Write runs up to GOMAXPROCS encoders, each owning a zstd encoder and its
// buffers; finished blocks are written under a mutex, so w sees ordinary
// sequential writes. LoadFile runs the requested number of decoders over
// runs of blocks (a block and the continuation blocks that follow it), each
// owning a zstd decoder (concurrency 1) and its buffers.
package snapshot
