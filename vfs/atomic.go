package vfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

var tmpSeq atomic.Uint64

// WriteFileAtomic writes data to path so that after a crash path holds either
// its old contents or data, never a mix. It writes a temporary file (mode
// 0600) in the same directory, fsyncs and closes it, renames it over path and
// fsyncs the directory. Every error is returned; on failure the temporary
// file is removed and a failure to remove it is reported too.
func WriteFileAtomic(fs FS, path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp := fmt.Sprintf("%s.tmp-%d-%d", path, os.Getpid(), tmpSeq.Add(1))
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			if rerr := fs.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
	}()
	if _, err = f.Write(data); err != nil {
		return errors.Join(err, f.Close())
	}
	if err = f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = fs.Rename(tmp, path); err != nil {
		return err
	}
	renamed = true
	return fs.SyncDir(dir)
}
