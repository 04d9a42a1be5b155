package vfs

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
)

// FaultFS wraps an FS and injects faults into File.Write and File.Sync.
//
// Writes are counted across all files opened through the FaultFS, starting
// at 1 for the first call to File.Write; syncs are counted the same way for
// File.Sync. A fault is armed for a particular call number: FailWrite(n, err)
// makes the nth write return err without writing anything, ShortWrite(n)
// makes the nth write write only the first half of its bytes and return
// io.ErrShortWrite, FailSync(n, err) makes the nth sync return err without
// syncing. Injected errors are wrapped in *os.PathError naming the file, so
// errors.Is(err, syscall.ENOSPC) holds when err was syscall.ENOSPC.
//
// A typical test reads Writes() or Syncs() and arms a fault for the next
// call. All methods are safe for concurrent use. Operations other than
// File.Write and File.Sync are passed through unchanged, apart from the
// bookkeeping of a space limit (SetSpace).
//
// SetSpace makes the FaultFS a small filesystem: see there.
type FaultFS struct {
	fs FS

	mu          sync.Mutex
	writes      int64
	syncs       int64
	writeFaults map[int64]writeFault
	syncFaults  map[int64]error

	// Space limit (SetSpace); limit < 0 means none.
	limit int64
	used  int64                // sum of the sizes of files
	files map[string]*fileSize // by path, files opened through the FaultFS
}

// fileSize is the size of one file as the space limit counts it. Open
// handles share it, and a rename moves it to the new path.
type fileSize struct{ n int64 }

type writeFault struct {
	short bool
	err   error
}

// NewFaultFS returns a FaultFS that forwards to fs with no faults armed.
func NewFaultFS(fs FS) *FaultFS {
	return &FaultFS{
		fs:          fs,
		writeFaults: make(map[int64]writeFault),
		syncFaults:  make(map[int64]error),
		limit:       -1,
		files:       make(map[string]*fileSize),
	}
}

// SetSpace limits the total size of the files opened through the FaultFS
// to limit bytes, as on a filesystem of that size: a write that would take
// the total further writes what fits and fails with syscall.ENOSPC, while
// overwriting bytes a file already holds needs no space. Removing a file
// or truncating it frees its bytes. A file counts from the first time it
// is opened through the FaultFS, with the size it had then; files never
// opened through it do not count. FreeSpace then reports what is left.
// A negative limit removes the limit.
func (f *FaultFS) SetSpace(limit int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit = limit
}

// Used returns the total size of the files the space limit counts.
func (f *FaultFS) Used() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used
}

// FreeSpace implements SpaceReporter: with a space limit, what is left of
// it; without one, what the wrapped FS reports.
func (f *FaultFS) FreeSpace(dir string) (int64, error) {
	f.mu.Lock()
	limit, used := f.limit, f.used
	f.mu.Unlock()
	if limit < 0 {
		return FreeSpace(f.fs, dir)
	}
	return max(limit-used, 0), nil
}

// track returns the size record of path, counting the file at its current
// size the first time.
func (f *FaultFS) track(name string, file File, trunc bool) (*fileSize, error) {
	var size int64
	if !trunc {
		fi, err := file.Stat()
		if err != nil {
			return nil, err
		}
		size = fi.Size()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fsz := f.files[name]
	if fsz == nil {
		fsz = &fileSize{}
		f.files[name] = fsz
	}
	f.used += size - fsz.n
	fsz.n = size
	return fsz, nil
}

// grow takes room for a write of n bytes at offset off of the file fsz
// and returns how many of them fit, and the file's size before.
func (f *FaultFS) grow(fsz *fileSize, off int64, n int) (fit int, prev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev = fsz.n
	end := off + int64(n)
	if end <= fsz.n {
		return n, prev
	}
	if f.limit >= 0 {
		end = min(end, fsz.n+max(f.limit-f.used, 0))
		if end <= off {
			return 0, prev
		}
	}
	f.used += end - fsz.n
	fsz.n = end
	return int(end - off), prev
}

// resize records that a file now has size bytes.
func (f *FaultFS) resize(fsz *fileSize, size int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used += size - fsz.n
	fsz.n = size
}

// FailWrite arms the nth File.Write call (1-based, counted across all files)
// to fail with err and write nothing.
func (f *FaultFS) FailWrite(n int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeFaults[n] = writeFault{err: err}
}

// ShortWrite arms the nth File.Write call to write only the first half of
// its bytes and return io.ErrShortWrite.
func (f *FaultFS) ShortWrite(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeFaults[n] = writeFault{short: true, err: io.ErrShortWrite}
}

// FailSync arms the nth sync call (1-based, counted across all files; Sync,
// Datasync and SyncRange all count) to fail with err without syncing.
func (f *FaultFS) FailSync(n int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncFaults[n] = err
}

// Reset disarms every fault. Counters keep counting.
func (f *FaultFS) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.writeFaults)
	clear(f.syncFaults)
}

// Writes returns how many File.Write calls have been made so far.
func (f *FaultFS) Writes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Syncs returns how many File.Sync calls have been made so far.
func (f *FaultFS) Syncs() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

func (f *FaultFS) nextWrite() (writeFault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	wf, ok := f.writeFaults[f.writes]
	delete(f.writeFaults, f.writes)
	return wf, ok
}

func (f *FaultFS) nextSync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
	err := f.syncFaults[f.syncs]
	delete(f.syncFaults, f.syncs)
	return err
}

// OpenFile implements FS.
func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	fsz, err := f.track(name, file, flag&os.O_TRUNC != 0)
	if err != nil {
		return nil, errors.Join(err, file.Close())
	}
	return &faultFile{File: file, fs: f, size: fsz}, nil
}

// Remove implements FS. Removing a file frees its bytes.
func (f *FaultFS) Remove(name string) error {
	if err := f.fs.Remove(name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fsz := f.files[name]; fsz != nil {
		f.used -= fsz.n
		fsz.n = 0
		delete(f.files, name)
	}
	return nil
}

// Rename implements FS. The file keeps its bytes under the new name; a
// file it replaces frees its own.
func (f *FaultFS) Rename(oldpath, newpath string) error {
	if err := f.fs.Rename(oldpath, newpath); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fsz := f.files[newpath]; fsz != nil && oldpath != newpath {
		f.used -= fsz.n
		fsz.n = 0
		delete(f.files, newpath)
	}
	if fsz := f.files[oldpath]; fsz != nil {
		delete(f.files, oldpath)
		f.files[newpath] = fsz
	}
	return nil
}

// MkdirAll implements FS.
func (f *FaultFS) MkdirAll(path string, perm os.FileMode) error { return f.fs.MkdirAll(path, perm) }

// ReadDir implements FS.
func (f *FaultFS) ReadDir(dir string) ([]os.DirEntry, error) { return f.fs.ReadDir(dir) }

// Stat implements FS.
func (f *FaultFS) Stat(name string) (os.FileInfo, error) { return f.fs.Stat(name) }

// SyncDir implements FS.
func (f *FaultFS) SyncDir(dir string) error { return f.fs.SyncDir(dir) }

// Lock implements FS.
func (f *FaultFS) Lock(name string) (io.Closer, error) { return f.fs.Lock(name) }

type faultFile struct {
	File
	fs   *FaultFS
	size *fileSize
}

func (ff *faultFile) Write(p []byte) (int, error) {
	wf, ok := ff.fs.nextWrite()
	if !ok {
		return ff.write(p)
	}
	if wf.short {
		n, err := ff.write(p[:len(p)/2])
		if err != nil {
			return n, err
		}
		return n, &os.PathError{Op: "write", Path: ff.Name(), Err: io.ErrShortWrite}
	}
	return 0, &os.PathError{Op: "write", Path: ff.Name(), Err: wf.err}
}

// write writes as much of p as the space limit lets through.
func (ff *faultFile) write(p []byte) (int, error) {
	off, err := ff.File.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	fit, prev := ff.fs.grow(ff.size, off, len(p))
	n, err := ff.File.Write(p[:fit])
	if n < fit { // give back what was not written
		ff.fs.resize(ff.size, max(prev, off+int64(n)))
	}
	if err == nil && fit < len(p) {
		err = &os.PathError{Op: "write", Path: ff.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

// Truncate frees or takes the bytes the size change makes.
func (ff *faultFile) Truncate(size int64) error {
	if err := ff.File.Truncate(size); err != nil {
		return err
	}
	ff.fs.resize(ff.size, size)
	return nil
}

func (ff *faultFile) Sync() error {
	if err := ff.fs.nextSync(); err != nil {
		return &os.PathError{Op: "sync", Path: ff.Name(), Err: err}
	}
	return ff.File.Sync()
}

// SyncRange counts as a sync for FailSync, like Sync; on a file that
// cannot sync a range it only counts.
func (ff *faultFile) SyncRange(off int64) error {
	if err := ff.fs.nextSync(); err != nil {
		return &os.PathError{Op: "sync_file_range", Path: ff.Name(), Err: err}
	}
	if rs, ok := ff.File.(RangeSyncer); ok {
		return rs.SyncRange(off)
	}
	return nil
}

// Datasync counts as a sync for FailSync, like Sync.
func (ff *faultFile) Datasync() error {
	if err := ff.fs.nextSync(); err != nil {
		return &os.PathError{Op: "fdatasync", Path: ff.Name(), Err: err}
	}
	return SyncData(ff.File)
}
