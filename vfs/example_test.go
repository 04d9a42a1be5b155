package vfs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cidstore/cidstore/vfs"
)

func ExampleFaultFS() {
	dir, _ := os.MkdirTemp("", "vfs-example")
	defer os.RemoveAll(dir)

	fs := vfs.NewFaultFS(vfs.Default)
	fs.FailWrite(2, syscall.ENOSPC) // the second write fails
	f, _ := fs.OpenFile(filepath.Join(dir, "f"), os.O_CREATE|os.O_WRONLY, 0o600)
	defer f.Close()
	_, err1 := f.Write([]byte("a"))
	_, err2 := f.Write([]byte("b"))
	fmt.Println(err1, errors.Is(err2, syscall.ENOSPC))
	// Output: <nil> true
}

func ExampleWriteFileAtomic() {
	dir, _ := os.MkdirTemp("", "vfs-example")
	defer os.RemoveAll(dir)

	path := filepath.Join(dir, "state")
	// The temporary name is one the directory's owner removes after a
	// crash; a "*" in it would make it unique instead.
	err := vfs.WriteFileAtomic(vfs.Default, path, path+".tmp", func(f vfs.File) error {
		_, err := f.Write([]byte("complete or absent"))
		return err
	})
	b, _ := os.ReadFile(path)
	fmt.Println(err, string(b))
	// Output: <nil> complete or absent
}
