package wal

import (
	"errors"
	"fmt"
	"os"
)

var (
	// ErrCorrupt is matched (via errors.Is) by every error that reports a
	// corrupt log: a bad record that is not a torn tail, an LSN gap, or a
	// bad segment header. The concrete error is a *CorruptError.
	ErrCorrupt = errors.New("wal: corrupt log")

	// ErrReadOnly is returned by Append, WaitDurable beyond the last
	// record and Sync on a log opened with Options.ReadOnly.
	ErrReadOnly = errors.New("wal: log opened read-only")

	// ErrClosed is returned by operations on a closed Log, and by a second
	// call to Close.
	ErrClosed = errors.New("wal: log closed")

	// ErrLSNExhausted is matched (via errors.Is) by the error Append
	// returns once the log has used LSN MaxLSN, and by the error Open,
	// Repair and Verify return for a log whose segment names or records
	// go beyond MaxLSN (which this package never writes). Nothing is ever
	// written with an LSN that wrapped around.
	ErrLSNExhausted = errors.New("wal: LSN space exhausted")

	// ErrTorn is returned by Reader.Next when the input ends in a partial or
	// damaged record that no valid record follows: the signature of a write
	// interrupted by a crash. Reader.Offset reports where it starts.
	ErrTorn = errors.New("wal: torn record at end of input")

	// ErrInvalidOptions is returned (wrapped) by Open for invalid Options:
	// no Dir, an unknown sync mode, or a SegmentSize outside
	// MinSegmentSize..MaxSegmentSize.
	ErrInvalidOptions = errors.New("wal: invalid options")
)

// CorruptError describes a corrupt spot in the log. It unwraps to ErrCorrupt.
type CorruptError struct {
	// File is the segment file path ("" when decoding a bare stream).
	File string
	// Offset is the byte offset of the bad record (or header) in File.
	Offset int64
	// LSN is the LSN the record at Offset was expected to carry (0 if
	// unknown).
	LSN uint64
	// Reason is a short human-readable description.
	Reason string
}

// Error implements error. It names the file and the byte offset.
func (e *CorruptError) Error() string {
	file := e.File
	if file == "" {
		file = "<stream>"
	}
	return fmt.Sprintf("wal: corrupt log: %s at offset %d (expected LSN %d): %s", file, e.Offset, e.LSN, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// bare strips the *os.PathError the file system wraps err in, for a
// message that names the file itself. A file opened under a temporary
// name (a new segment, or the spare) keeps that name in its errors after
// it is renamed, so the wrapper would name a file that no longer exists.
func bare(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// checkLSNLimit returns an error matching ErrLSNExhausted if the segment
// seg, whose last record has LSN last, goes beyond MaxLSN.
func checkLSNLimit(seg segment, last uint64) error {
	if seg.first <= MaxLSN && last <= MaxLSN {
		return nil
	}
	return fmt.Errorf("wal: %s holds LSNs beyond %d, the largest a log uses: %w", seg.path, uint64(MaxLSN), ErrLSNExhausted)
}
