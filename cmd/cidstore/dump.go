package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cidstore/cidstore/store"
	"github.com/cidstore/cidstore/vfs"
)

// runDump exports a store directory to a snapshot stream file.
func runDump(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("dump", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: dump DIR FILE", errUsage)
	}
	dir, file := fs.Arg(0), fs.Arg(1)
	if err := outsideStore(file, dir); err != nil {
		return err
	}
	s, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	keys, pairs, triples := s.Len(), s.Pairs(), s.TripleCount() // a read-only store does not change
	sum, err := exportTo(ctx, s, file)
	err = errors.Join(err, s.Close())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dumped %s to %s: %d keys, %d pairs, %d triples, %d bytes\n", dir, file, keys, pairs, triples, sum.Bytes)
	return nil
}

// outsideStore refuses a FILE argument that lies inside the store
// directory dir, or is dir itself: dump would write into the store's own
// files, load would read a file the store may change under it.
func outsideStore(file, dir string) error {
	d, err := filepath.Abs(dir)
	if err == nil {
		d, err = filepath.EvalSymlinks(d)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil // no store there to be inside of
	}
	if err != nil {
		return err
	}
	f, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if parent, err := filepath.EvalSymlinks(filepath.Dir(f)); err == nil {
		f = filepath.Join(parent, filepath.Base(f))
	}
	if rel, err := filepath.Rel(d, f); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%w: %s is inside the store directory %s", errUsage, file, dir)
	}
	return nil
}

type summary struct{ Bytes int64 }

// exportTo writes the export atomically (vfs.WriteFileAtomic), so FILE is
// either complete or absent. The temporary file gets a unique name next to
// FILE, so that it can replace nobody's file.
func exportTo(ctx context.Context, s *store.Store, file string) (summary, error) {
	var n int64
	err := vfs.WriteFileAtomic(vfs.Default, file, file+".*.tmp", func(f vfs.File) error {
		p := newProgress(-1, "dumping")
		bw := bufio.NewWriterSize(f, 1<<20)
		sum, err := s.Export(ctx, p.writer(bw))
		p.done()
		if err != nil {
			return err
		}
		n = sum.Bytes
		return bw.Flush()
	})
	if err != nil {
		return summary{}, err
	}
	return summary{n}, nil
}

// runLoad imports a snapshot stream file into a new or empty store.
func runLoad(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("load", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: load FILE DIR", errUsage)
	}
	file, dir := fs.Arg(0), fs.Arg(1)
	if err := outsideStore(file, dir); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	created, err := missingAncestor(dir)
	if err != nil {
		return err
	}
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		return err // Open leaves nothing behind
	}
	p := newProgress(fi.Size(), "loading")
	_, err = s.Import(ctx, p.reader(bufio.NewReaderSize(f, 1<<20)))
	p.done()
	keys, pairs, triples := s.Len(), s.Pairs(), s.TripleCount()
	if err = errors.Join(err, s.Close()); err != nil {
		if created != "" {
			// The load made the directory: leave nothing behind.
			err = errors.Join(err, os.RemoveAll(created))
		}
		return err
	}
	fmt.Fprintf(stdout, "loaded %s into %s: %d keys, %d pairs, %d triples\n", file, dir, keys, pairs, triples)
	return nil
}

// missingAncestor returns the outermost of dir and its parents that does
// not exist ("" if dir exists): what opening a store in dir creates.
func missingAncestor(dir string) (string, error) {
	missing := ""
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, os.ErrNotExist) {
			return missing, err
		}
		if missing = d; filepath.Dir(d) == d {
			return missing, nil
		}
	}
}
