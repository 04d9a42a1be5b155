//go:build unix

package vfs

import (
	"os"
	"syscall"
)

// allocated returns st_blocks in bytes (st_blocks counts 512-byte units
// on every Unix Go supports).
func allocated(fi os.FileInfo) (int64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return 0, false
	}
	return int64(st.Blocks) * 512, true
}
