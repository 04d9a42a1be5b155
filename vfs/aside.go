package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// AsideSuffix ends the name of a file that recovery tools moved aside
// because it is damaged or does not belong: nothing reads such a file
// again, and nothing removes it; it is kept for a person to examine.
const AsideSuffix = ".corrupt"

// MoveAside renames the file at path to AsideName's name for it, fsyncs
// the directory and returns the new name. It never replaces a file.
func MoveAside(fsys FS, path string) (string, error) {
	to, err := AsideName(fsys, path)
	if err != nil {
		return "", err
	}
	if err := fsys.Rename(path, to); err != nil {
		return "", err
	}
	return to, fsys.SyncDir(filepath.Dir(path))
}

// AsideName returns the name a file at path is moved aside to:
// path+".corrupt" or, if that is taken, path+".N.corrupt" for the
// smallest free N from 2.
func AsideName(fsys FS, path string) (string, error) {
	for n := 1; ; n++ {
		to := path + AsideSuffix
		if n > 1 {
			to = fmt.Sprintf("%s.%d%s", path, n, AsideSuffix)
		}
		if _, err := fsys.Stat(to); errors.Is(err, fs.ErrNotExist) {
			return to, nil
		} else if err != nil {
			return "", err
		}
	}
}
