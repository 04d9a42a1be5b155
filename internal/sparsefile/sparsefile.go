// Package sparsefile writes sparse files for tests of damaged and hostile
// store directories: files whose apparent size is gigabytes while only a
// few chunks of them hold data, so that they cost no disk space.
package sparsefile

import (
	"errors"
	"os"
)

// Write creates (or truncates) the file at path with mode 0600, makes it
// size bytes long and writes each chunk at its offset; everything else is
// a hole that reads as zeros.
func Write(path string, size int64, chunks map[int64][]byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return errors.Join(err, f.Close())
	}
	for off, b := range chunks {
		if _, err := f.WriteAt(b, off); err != nil {
			return errors.Join(err, f.Close())
		}
	}
	return f.Close()
}
