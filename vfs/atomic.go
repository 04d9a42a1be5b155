package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// The one way files are written atomically: under a temporary name in the
// directory where they belong, fsynced, then renamed into place and the
// directory fsynced. After a crash the file is either absent (or its
// previous version is there) or complete; a temporary file may be left,
// which whoever owns the directory recognises by its name and removes.
//
// CreateTemp and TempFile.Install are the two halves, for a file written
// ahead and installed later (a WAL's preallocated spare segment) or kept
// open after it is installed (a new WAL segment). WriteFileAtomic joins
// them for a file written in one go (a snapshot, an export).

// tmpSeq numbers the unique temporary names of this process.
var tmpSeq atomic.Uint64

// TempFileError reports that CreateTemp (or WriteFileAtomic) could not
// write a file. Its message names the step and the cause but not the
// temporary file, which is gone (unless RemoveErr says otherwise): the
// caller names the file it was making.
type TempFileError struct {
	Op        string // "create", "write", "fsync", "close" or "rename"
	Err       error  // the cause, as the filesystem or the writer returned it
	RemoveErr error  // from removing the temporary file; nil if it is gone
}

// Error implements error.
func (e *TempFileError) Error() string {
	cause := pathless(e.Err)
	switch {
	case e.Op == "create":
		return e.Op + ": " + cause
	case e.RemoveErr != nil:
		return fmt.Sprintf("%s: %s; the temporary file was not removed: %v", e.Op, cause, e.RemoveErr)
	}
	return e.Op + ": " + cause + " (temporary file removed)"
}

// pathless is err's message with the paths of the *fs.PathErrors in it
// (as the filesystem returns them, perhaps joined) left out.
func pathless(err error) string {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Op + ": " + pe.Err.Error()
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var msgs []string
		for _, e := range j.Unwrap() {
			msgs = append(msgs, pathless(e))
		}
		return strings.Join(msgs, "\n")
	}
	return err.Error()
}

// Unwrap returns the cause and the removal error, if any.
func (e *TempFileError) Unwrap() []error {
	if e.RemoveErr != nil {
		return []error{e.Err, e.RemoveErr}
	}
	return []error{e.Err}
}

// TempFile is a new file written under a temporary name (see CreateTemp),
// durable but not yet in place.
type TempFile struct {
	fs     FS
	f      File
	name   string // the temporary name, or where Install put the file
	closed bool
}

// CreateTemp creates the file tmp with mode 0600, calls write with it (open
// for writing) and fsyncs it. tmp is the name the owner of the directory
// gives such a file, so that its cleanup after a crash recognises and
// removes it:
//
//   - a name without "*" is used as it is, and a file a crash left under
//     it is replaced;
//   - in a name with "*" the last "*" is replaced by a string that makes
//     the name unique, and the file is created exclusively, for a
//     directory the caller does not own, where a fixed name could replace
//     somebody's file.
//
// On failure the file is closed and removed, and the error is a
// *TempFileError; errors.Is reaches the cause, whether it came from the
// filesystem or from write. The returned file is positioned where write
// left it.
func CreateTemp(fsys FS, tmp string, write func(File) error) (*TempFile, error) {
	f, name, err := createTemp(fsys, tmp)
	if err != nil {
		return nil, &TempFileError{Op: "create", Err: err}
	}
	t := &TempFile{fs: fsys, f: f, name: name}
	op := "write"
	err = write(f)
	if err == nil {
		op, err = "fsync", f.Sync()
	}
	if err != nil {
		return nil, t.fail(op, err)
	}
	return t, nil
}

// createTemp opens the temporary file as CreateTemp says.
func createTemp(fsys FS, tmp string) (File, string, error) {
	i := strings.LastIndex(tmp, "*")
	if i < 0 {
		f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		return f, tmp, err
	}
	for try := 0; ; try++ {
		name := fmt.Sprintf("%s%d-%d%s", tmp[:i], os.Getpid(), tmpSeq.Add(1), tmp[i+1:])
		f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue // another process of the same number left it
		}
		return f, name, err
	}
}

// fail closes and removes the temporary file after op failed with err.
func (t *TempFile) fail(op string, err error) error {
	if !t.closed {
		err = errors.Join(err, t.f.Close())
		t.closed = true
	}
	rerr := t.fs.Remove(t.name)
	if errors.Is(rerr, fs.ErrNotExist) {
		rerr = nil
	}
	return &TempFileError{Op: op, Err: err, RemoveErr: rerr}
}

// File returns the open file.
func (t *TempFile) File() File { return t.f }

// Name returns the file's path: its temporary name until Install.
func (t *TempFile) Name() string { return t.name }

// Close closes the file. Install works on a closed file too.
func (t *TempFile) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	return t.f.Close()
}

// Install renames the file to path (replacing a file there) and fsyncs the
// directory, so that path durably names the complete file; an open file
// stays open. On failure the file is closed: if the rename failed it is
// also removed (the error is a *TempFileError); if only the directory
// fsync failed it is at path, but its name may not survive a crash.
func (t *TempFile) Install(path string) error {
	if err := t.fs.Rename(t.name, path); err != nil {
		return t.fail("rename", err)
	}
	t.name = path
	if err := t.fs.SyncDir(filepath.Dir(path)); err != nil {
		return errors.Join(fmt.Errorf("sync directory: %w", err), t.Close())
	}
	return nil
}

// Discard closes the file and removes it. It is for a file that was not
// installed: one the caller no longer wants.
func (t *TempFile) Discard() error {
	err := t.Close()
	if rerr := t.fs.Remove(t.name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// WriteFileAtomic writes the file path so that after a crash it holds
// either what it held before (or is absent) or everything write wrote,
// never a mix: CreateTemp(fsys, tmp, write), close, Install(path). tmp
// follows CreateTemp's rule. On any failure path is left as it was, the
// temporary file is removed, and every error is returned (a
// *TempFileError up to the rename).
func WriteFileAtomic(fsys FS, path, tmp string, write func(File) error) error {
	t, err := CreateTemp(fsys, tmp, write)
	if err != nil {
		return err
	}
	if err := t.Close(); err != nil {
		return t.fail("close", err)
	}
	return t.Install(path)
}
