package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// Layout of a store directory (see package store): the store's lock file
// and the directory of its write-ahead log.
const (
	storeLockName = "LOCK"
	storeWALDir   = "wal"
)

// runRepair cuts a store's write-ahead log at its first damaged record so
// that the store opens again. It is the offline form of Options.Repair.
func runRepair(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("repair", stdout)
	verbose := fs.Bool("v", false, "also print the repair log")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: cidstore repair [-v] DIR")
		fmt.Fprintln(stdout, "\nCuts the write-ahead log of the store in DIR just before its first damaged")
		fmt.Fprintln(stdout, "record, removing every later segment, and truncates a torn tail. Records")
		fmt.Fprintln(stdout, "after the damage are lost. The store must not be open.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: repair takes exactly one store directory, got %d arguments", errUsage, fs.NArg())
	}
	dir := fs.Arg(0)
	walDir := filepath.Join(dir, storeWALDir)
	if fi, err := os.Stat(walDir); err != nil {
		return fmt.Errorf("%s is not a store directory: %w", dir, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a store directory: %s is not a directory", dir, walDir)
	}
	// The store's own lock, so that a store opened on dir (which holds it
	// for as long as it is open) and the repair exclude each other even
	// before the log's lock is taken.
	lock, err := vfs.Default.Lock(filepath.Join(dir, storeLockName))
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return fmt.Errorf("%s is open in another process; close it first: %w", dir, err)
		}
		return err
	}
	defer lock.Close()

	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stdout, nil))
	}
	rep, err := wal.Repair(vfs.Default, walDir, logger)
	if err != nil {
		return err
	}
	printRepair(stdout, walDir, rep)
	return nil
}

// printRepair writes a human-readable account of rep.
func printRepair(w io.Writer, walDir string, rep wal.RepairReport) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-18s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	line("write-ahead log", "%s", walDir)
	if rep.TornBytes > 0 {
		line("torn tail", "%d bytes cut from the last segment", rep.TornBytes)
	} else {
		line("torn tail", "none")
	}
	if !rep.Truncated {
		line("corruption", "none found")
		line("last LSN", "%d", rep.LastLSN)
		line("result", "log intact, no records dropped")
		return
	}
	line("corruption", "found")
	line("  file", "%s", rep.File)
	line("  offset", "%d", rep.Offset)
	line("  reason", "%s", rep.Reason)
	line("last LSN kept", "%d", rep.LastLSN)
	line("bytes dropped", "%d", rep.BytesDropped)
	line("records dropped", "%d (those that still decoded)", rep.RecordsDropped)
	line("segments removed", "%d", len(rep.SegmentsRemoved))
	for _, s := range slices.Sorted(slices.Values(rep.SegmentsRemoved)) {
		fmt.Fprintf(w, "%-18s %s\n", "", s)
	}
	line("result", "log cut before the damage; the store opens again")
}
