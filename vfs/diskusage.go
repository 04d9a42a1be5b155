package vfs

import "os"

// DiskUsage returns the bytes the file described by fi occupies on disk:
// its allocated blocks where the system reports them (st_blocks on Unix),
// else its size. A sparse file occupies far less than its size, so a
// reader that sizes memory from a file uses DiskUsage to follow what the
// file really holds rather than what its size claims.
func DiskUsage(fi os.FileInfo) int64 {
	if n, ok := allocated(fi); ok {
		return n
	}
	return fi.Size()
}
