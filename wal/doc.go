// Package wal is a write-ahead log: an append-only sequence of records, each
// identified by a log sequence number (LSN), stored in segment files and
// protected by CRC32C checksums. It moves bytes in and bytes out; it does not
// interpret payloads.
//
// # Directory layout
//
// A log directory (mode 0700) holds:
//
//	LOCK                       flock(2) lock file; one Log per directory
//	00000000000000000001.wal   segment files (mode 0600), named by the LSN
//	00000000000000004711.wal   of their first record, %020d.wal
//
// Open takes the lock; with Options.NoLock it takes none and LOCK is not
// created: the owner of the directory keeps writers out with a lock of
// its own (a store locks the LOCK file of the directory the log's
// directory is in). Nothing else in the log directory depends on LOCK.
//
// A segment named N.wal.tmp is a segment being created; recovery removes it.
// New segments are written under the temporary name (header), fsynced,
// renamed into place and the directory is fsynced. spare.wal.tmp is a
// segment being preallocated (below); Open removes a leftover one.
//
// # Segment format
//
// All integers are little endian.
//
//	offset  size  field
//	0       6     magic "CIDWAL"
//	6       2     version, uint16 = 1
//	8       ...   record frames, back to back
//
// # Record frame
//
//	offset  size  field
//	0       4     crc     uint32: CRC-32C (Castagnoli) of bytes 4 .. 17+length
//	4       4     length  uint32: payload length, at most MaxPayload (64 MiB)
//	8       8     lsn     uint64: log sequence number
//	16      1     type    uint8: record type, never 0
//	17      length payload
//
// The frame header is HeaderSize = 17 bytes. The checksum covers everything
// after the crc field, so a frame is self-validating. Type 0 is invalid so
// that a zero-filled tail never parses as a record. LSNs start at 1 and each
// record carries the previous LSN plus one, within a segment and across
// segments: the first record of a segment carries the LSN in its name.
// LSNs end at MaxLSN (2^63-1): Append fails with ErrLSNExhausted rather
// than wrap around, and Open, Repair and Verify refuse a log whose names or
// records go beyond it.
// Records are never split across segments; rotation happens at record
// boundaries before a record that would take the segment past
// Options.SegmentSize.
//
// A segment may continue with zero bytes after its last record, up to the
// end of the file: the unused rest of a preallocated segment. A reader
// takes a frame header of 17 zero bytes (or a shorter all-zero remainder
// at the end of the file) followed only by zeros as the end of the
// segment, not as damage; zeros followed by anything else are damage like
// any other.
//
// # Preallocation
//
// Unless Options.NoPreallocate is set (and for segment sizes of at least
// 1 MiB), the preallocator, a goroutine of its own, writes a spare segment
// in the background: header, zeros up to SegmentSize, fsync. The flusher
// renames it into place at the next rotation instead of creating a
// segment, and a log
// whose active segment was not preallocated (a new log, once it has
// written 1 MiB, or half a segment if that is less) switches to the spare
// as soon as it is ready, at the start of a batch. Writes then overwrite
// allocated blocks and the flusher's fdatasync(2) writes no metadata,
// which roughly halves the cost of a group commit on ext4. The price is
// that every segment is written twice. Without a spare ready the flusher
// creates a segment as before, so appends never wait for the preallocator,
// and a failure to preallocate is logged and otherwise ignored.
//
// Preallocation never takes the space records need. Where the filesystem
// tells its free space (vfs.SpaceReporter), no spare is made while less
// than two segments are free (the spare, and the rest of the active
// segment). After a spare could not be made, or could not be renamed
// into place (it is then removed and the segment created as usual), none
// is tried again until the next segment starts. When a write of records, or the creation of a
// segment for them, fails for lack of space (ENOSPC, EDQUOT), the flusher
// first gives the spare's space back (abandoning a fill in progress, and
// waiting until its file is removed, or removing a ready spare), holds
// spares until the next segment, and retries once; only a second failure
// is the sticky failure below.
//
// # Recovery
//
// Open reads and verifies every segment. A damaged record at the very tail
// of the last segment is a torn write left by a crash and is truncated away
// (logged, and counted in Stats.TornBytesDropped). A record is torn when the
// damage (an incomplete header or payload at end of file, zeros, a bad
// checksum, a bad length or type) is not followed anywhere later in the file
// by a frame that passes its checksum and carries an LSN greater than the
// last good one; the search scans forward byte by byte and runs only on this
// failure path. A last segment whose header is itself incomplete (a prefix of
// the real header, or only zeros) is removed as torn.
//
// Reading a segment takes memory bounded by a constant, not by the size of
// the file or by the lengths its damaged frames claim: records are read
// through a 64 KiB buffer, a record longer than the payload buffer must
// pass its checksum on the file before a buffer of its length is
// allocated, and the search past damage, the zero check of a bad header
// and the count of what a repair drops read the file in place through a
// window of at most 1 MiB. A sparse segment of gigabytes with one bad
// frame costs seconds of reading and a few MiB.
//
// Any other damage is corruption: a bad record with a valid record after it,
// a bad record in a segment that is not the last, a bad segment header, or
// an LSN that is not the previous one plus one. Open then fails with a
// *CorruptError (errors.Is(err, ErrCorrupt)) naming the file and byte offset.
// Options.CheckRecord lets the caller reject records that pass their
// checksum but that it cannot read; such a record is damage like any
// other, also at the very end of the log.
//
// Open reads every segment once. Recover is Open for a caller that
// rebuilds its state from the log: the same pass hands it every record
// (Recovery.Next) as it validates them, so that recovery reads the log
// once, and Recovery.Finish then opens the log for appending. Replay reads
// the segments again, for a log already open.
//
// With Options.Repair, or offline with Repair, the log is instead
// repaired: every segment is read, skipping over damage to the next
// intact frame, the runs of intact records are strung together by LSN,
// and one chain of consecutive records is kept: the one that starts the
// log or, given a cut (RepairOptions: the caller holds everything up to
// an LSN, in a snapshot), the longest one that reaches the record after
// the cut, so that damage below the cut costs nothing. Files that hold
// nothing kept are moved aside (renamed *.corrupt); a segment that holds
// kept records among dropped bytes is copied aside and written anew with
// only the kept ones. Repair deletes no file, and what it did is logged
// and reported in a RepairReport.
//
// Segments are fsynced before a new one is created, whatever the sync
// policy, so only the last segment can legitimately end in a torn write.
//
// # Writing and group commit
//
// Append encodes the record into an in-memory pending buffer under a mutex,
// assigns the next LSN and signals the single flusher goroutine; it never
// waits for the disk. The flusher swaps the pending buffer with a spare one
// (double buffering; both are reused) and writes the batch (rotating
// segments where needed). Under SyncAlways it then hands the batch to a
// syncer goroutine and goes on with the next batch at once: group commits
// are pipelined, the write of one overlapping the fdatasync(2) of the one
// before (syncer.go). The syncer fsyncs once for every batch handed to it
// meanwhile, publishes the durable LSN and wakes the waiters of each batch
// it covers, oldest first, by closing one channel per batch, so records
// are acknowledged strictly in LSN order. Under the other policies the
// flusher acknowledges a batch once written. While batches are written
// and fsynced, new records accumulate in the pending buffer and are taken
// as one batch as soon as the flusher is free, so many concurrent writers
// share each fsync.
//
// WaitDurable waits for a record per the sync policy: fsynced (SyncAlways)
// or written to the OS (SyncInterval, which also fsyncs on a ticker, and
// SyncNever, which fsyncs only on rotation and Close).
//
// A failed write, fsync, close or segment creation is sticky: the log stops
// writing, Err reports the error, and every waiter and every later Append or
// WaitDurable returns it, wrapped so that errors.Is reaches the cause (for
// example syscall.ENOSPC). DurableLSN never covers data that was not written
// and fsynced successfully, and nothing after the failure is acknowledged.
// With group commits in flight a failed fsync fails every batch not yet
// acknowledged, which are all at or after it; a failed write first lets
// the fsyncs of the batches before it finish, so they are acknowledged if
// those succeed, and never fails an earlier batch.
//
// Testing hooks: every file operation goes through vfs.FS, so faults can be
// injected with vfs.FaultFS. AppendRecord and Reader expose the frame codec
// for fuzzing.
package wal
