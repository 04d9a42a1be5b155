package snapshot

import (
	"errors"
	"fmt"
)

// ErrCorrupt is matched (via errors.Is) by every error that reports a
// damaged or malformed snapshot: a bad magic, version, checksum, length,
// count, index entry or entry order. The concrete error is a *CorruptError.
var ErrCorrupt = errors.New("snapshot: corrupt snapshot")

// CorruptError describes where a snapshot is damaged. It unwraps to
// ErrCorrupt.
type CorruptError struct {
	// File is the snapshot file path ("" when reading a bare stream).
	File string
	// Offset is the byte offset of the damaged structure (file header,
	// block frame, footer or trailer) from the start of the file or stream.
	Offset int64
	// Reason is a short human-readable description.
	Reason string
}

// Error implements error. It names the file and the byte offset.
func (e *CorruptError) Error() string {
	file := e.File
	if file == "" {
		file = "<stream>"
	}
	return fmt.Sprintf("snapshot: corrupt snapshot: %s at offset %d: %s", file, e.Offset, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corrupt(file string, off int64, format string, args ...any) error {
	return &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...)}
}
