package vfs

import (
	"io"
	"os"
	"sync"
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
// File.Write and File.Sync are passed through unchanged.
type FaultFS struct {
	fs FS

	mu          sync.Mutex
	writes      int64
	syncs       int64
	writeFaults map[int64]writeFault
	syncFaults  map[int64]error
}

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
	}
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
	return &faultFile{File: file, fs: f}, nil
}

// Remove implements FS.
func (f *FaultFS) Remove(name string) error { return f.fs.Remove(name) }

// Rename implements FS.
func (f *FaultFS) Rename(oldpath, newpath string) error { return f.fs.Rename(oldpath, newpath) }

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
	fs *FaultFS
}

func (ff *faultFile) Write(p []byte) (int, error) {
	wf, ok := ff.fs.nextWrite()
	if !ok {
		return ff.File.Write(p)
	}
	if wf.short {
		n, err := ff.File.Write(p[:len(p)/2])
		if err != nil {
			return n, err
		}
		return n, &os.PathError{Op: "write", Path: ff.Name(), Err: io.ErrShortWrite}
	}
	return 0, &os.PathError{Op: "write", Path: ff.Name(), Err: wf.err}
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
