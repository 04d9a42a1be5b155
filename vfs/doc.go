// Package vfs is a small filesystem abstraction used by the storage engine so
// that tests can inject faults.
//
// The engine never calls the os package directly for files it persists;
// it goes through an FS. Default is backed by the operating system. FaultFS
// wraps another FS and makes selected writes fail, selected writes short, or
// selected fsyncs fail, so that error paths (ENOSPC, EIO, torn writes) can be
// exercised deterministically, in the spirit of Pebble's vfs/errorfs.
// FaultFS.SetSpace makes it a small filesystem: writes beyond a space limit
// fail with ENOSPC after writing what fits, as on a full disk.
//
// Filesystems that can tell their free space implement SpaceReporter (the
// default one does, with statfs(2)); DiskUsage tells how many bytes a file
// occupies on disk, which for a sparse file is far less than its size.
//
// The package also provides two durability helpers built on FS:
//
//   - FS.SyncDir fsyncs a directory so that created, renamed or removed
//     entries survive a crash.
//   - WriteFileAtomic writes a file under a temporary name in the same
//     directory, fsyncs it, renames it into place and fsyncs the directory.
//     Its two halves, CreateTemp and TempFile.Install, serve files written
//     ahead and installed later, or kept open once installed. It is the
//     only place that sequence is written; every file the engine creates
//     goes through it.
//
// FS.Lock takes an exclusive, non-blocking flock(2) on a lock file and
// returns ErrLocked if another holder (another process, or another open file
// description in the same process) already has it.
package vfs
