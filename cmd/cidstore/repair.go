package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/cidstore/cidstore/store"
)

// runRepair repairs a store directory so that it opens again: the
// offline form of Options.Repair (see store.Repair).
func runRepair(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("repair", stdout)
	verbose := fs.Bool("v", false, "also print the repair log")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: cidstore repair [-v] DIR")
		fmt.Fprintln(stdout, "\nRepairs the store in DIR so that it opens again. Snapshots that do not")
		fmt.Fprintln(stdout, "validate are moved aside (renamed *.corrupt); the write-ahead log keeps the")
		fmt.Fprintln(stdout, "intact records that follow the newest valid snapshot, and damage the snapshot")
		fmt.Fprintln(stdout, "covers costs nothing. Records after damage above it are dropped from the log")
		fmt.Fprintln(stdout, "but stay in the files moved aside: repair deletes nothing but a torn final")
		fmt.Fprintln(stdout, "write. The store must not be open.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: repair takes exactly one store directory, got %d arguments", errUsage, fs.NArg())
	}
	dir := fs.Arg(0)
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stdout, nil))
	}
	rep, err := store.Repair(nil, dir, logger)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%s is open in another process; close it first: %w", dir, err)
	}
	if err != nil {
		if rep.WAL.Truncated || len(rep.Snapshots) > 0 {
			printRepair(stdout, dir, rep)
		}
		return err
	}
	printRepair(stdout, dir, rep)
	return nil
}

// printRepair writes a human-readable account of rep.
func printRepair(w io.Writer, dir string, rep store.RepairReport) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-18s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) { fmt.Fprintf(w, "%-18s %s\n", "", fmt.Sprintf(format, args...)) }
	line("store", "%s", dir)
	if len(rep.Snapshots) == 0 {
		line("snapshots", "all validate")
	} else {
		line("snapshots", "%d do not validate, moved aside", len(rep.Snapshots))
		for _, sn := range rep.Snapshots {
			more("%s -> %s", sn.Path, filepath.Base(sn.MovedTo))
			more("  %v", sn.Err)
			if sn.Lost {
				more("  what it held beyond the log kept is lost (it stays in the file moved aside)")
			} else {
				more("  the log rebuilds what it held")
			}
		}
	}
	if rep.BaseLSN > 0 {
		line("base", "the snapshot at LSN %d", rep.BaseLSN)
	} else {
		line("base", "none: the log starts the store")
	}
	wr := rep.WAL
	if wr.TornBytes > 0 {
		line("torn tail", "%d bytes cut from the last segment", wr.TornBytes)
	} else {
		line("torn tail", "none")
	}
	if wr.LastLSN >= wr.FirstLSN {
		line("log kept", "LSN %d..%d", wr.FirstLSN, wr.LastLSN)
	} else {
		line("log kept", "no records; the next is LSN %d", wr.FirstLSN)
	}
	if !wr.Truncated {
		line("corruption", "none found in the log")
	} else {
		line("corruption", "found")
		for _, d := range wr.Damage {
			more("%s at offset %d: %s", d.File, d.Offset, d.Reason)
		}
		line("records dropped", "%d lost from the log, %d the base snapshot holds", wr.RecordsDropped, wr.RecordsCovered)
		for _, d := range wr.Dropped {
			what := "lost"
			if d.Covered {
				what = "in the base snapshot"
			}
			more("LSN %d..%d from %s (%s)", d.FirstLSN, d.LastLSN, filepath.Base(d.File), what)
		}
		line("bytes dropped", "%d", wr.BytesDropped)
		line("moved aside", "%d", len(wr.MovedAside))
		for _, f := range slices.Sorted(slices.Values(wr.MovedAside)) {
			more("%s", f)
		}
		for _, f := range wr.Rewritten {
			line("rewritten", "%s", f)
		}
		if wr.Created != "" {
			line("created", "%s (empty)", wr.Created)
		}
	}
	if rep.Changed() {
		line("result", "repaired; the store opens again")
	} else {
		line("result", "nothing to repair")
	}
}
