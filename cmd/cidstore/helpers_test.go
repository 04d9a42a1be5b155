package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
	"github.com/cidstore/cidstore/wal"
)

// Helpers that the command's tests share.

// runCLI runs the command in process and returns its exit code, standard
// output and standard error.
func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cli is runCLI with standard output and standard error as one text.
func cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	code, out, errOut := runCLI(args...)
	return code, out + errOut
}

// toolBinary returns the binary runTool runs: this test binary, or, when
// it was built with the race detector (whose shadow memory would swamp
// the RSS measured, and which makes the tools slow), the same tests built
// without it.
func toolBinary(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return os.Args[0]
	}
	bin := filepath.Join(t.TempDir(), "cidstore.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	return bin
}

// runTool runs cidstore with args as a process of its own and returns its
// exit code, output and peak RSS in KiB.
func runTool(t *testing.T, bin string, args ...string) (int, string, int64) {
	t.Helper()
	rssFile := filepath.Join(t.TempDir(), "rss")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), cliEnv+"="+rssFile)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	rss, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatalf("cidstore %v: no peak RSS: %v\n%s", args, err, out)
	}
	kib, err := strconv.ParseInt(string(rss), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out), kib
}

// listing describes every file under dir (name and size), to show that a
// command changed nothing.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d", strings.TrimPrefix(p, dir), fi.Mode(), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// repairPair returns the i-th pair of the stores the tests fill.
func repairPair(i uint64) (cid.CID, cid.CID) {
	return cid.FromWords(1, 0, 0, i), cid.FromWords(2, 0, 0, i)
}

// writeRepairStore fills a store in dir with n pairs, one WAL record each,
// across several small segments, and returns its segment files in order.
func writeRepairStore(t *testing.T, dir string, n uint64) []string {
	t.Helper()
	fillRepairStore(t, dir, store.Options{SegmentSize: wal.MinSegmentSize}, n, 0)
	segs, err := filepath.Glob(filepath.Join(store.Layout{Dir: dir}.WAL(), "*.wal"))
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments %v, %v; want at least 3", segs, err)
	}
	return segs
}

// fillRepairStore opens a store in dir with o, inserts pairs 1..n, one
// WAL record each, checkpoints after pair checkpointAt (if not 0) and
// closes it.
func fillRepairStore(t *testing.T, dir string, o store.Options, n, checkpointAt uint64) {
	t.Helper()
	s, err := store.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ {
		k, v := repairPair(i)
		if err := s.Insert(k, v); err != nil {
			t.Fatal(err)
		}
		if i == checkpointAt {
			if err := s.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// appendTorn appends 30 bytes of garbage to the segment at path: a torn
// final write.
func appendTorn(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte{0xee}, 30)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
