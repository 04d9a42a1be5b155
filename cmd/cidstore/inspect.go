package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/cidstore/cidstore/store"
)

// runInspect prints a summary of a store directory, or with -metrics opens
// the store and prints its statistics in Prometheus text format.
func runInspect(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("inspect", stdout)
	metrics := fs.Bool("metrics", false, "open the store and print its stats in Prometheus text format")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: inspect [-metrics] DIR", errUsage)
	}
	dir := fs.Arg(0)
	if *metrics {
		s, err := store.Open(dir, store.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		return errors.Join(s.WritePrometheus(stdout), s.Close())
	}
	info, err := store.Inspect(nil, dir)
	if err != nil {
		return err
	}
	printDirInfo(stdout, dir, info, false)
	return nil
}

// runVerify validates every snapshot and WAL segment of a directory.
func runVerify(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("verify", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: verify DIR", errUsage)
	}
	info, err := store.VerifyDir(nil, fs.Arg(0))
	if err != nil && !errors.Is(err, store.ErrCorrupt) {
		// Nothing to show: the directory could not be read (missing,
		// not permitted), which says nothing about damage.
		return err
	}
	printDirInfo(stdout, fs.Arg(0), info, true)
	if err != nil {
		return fmt.Errorf("corruption found: %w", err)
	}
	fmt.Fprintln(stdout, "ok: every snapshot and WAL segment validates")
	return nil
}

func printDirInfo(w io.Writer, dir string, info store.DirInfo, full bool) {
	fmt.Fprintf(w, "directory %s\n\nsnapshots (%d, newest first):\n", dir, len(info.Snapshots))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if full {
		fmt.Fprintln(tw, "  file\tcut LSN\tbytes\tcreated\tkeys\tpairs\ttriples\tstatus")
	} else {
		fmt.Fprintln(tw, "  file\tcut LSN\tbytes\tcreated\tstatus")
	}
	for _, si := range info.Snapshots {
		status := "ok"
		if !full {
			status = "header ok" // blocks are read by verify only
		}
		if si.Err != nil {
			status = si.Err.Error()
		}
		created := "-"
		if !si.Header.Created.IsZero() {
			created = si.Header.Created.UTC().Format(time.RFC3339)
		}
		if full {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%d\t%d\t%d\t%s\n", filepath.Base(si.Path), si.LSN, si.Size, created, si.Summary.Entries, si.Summary.Pairs, si.Summary.Triples, status)
		} else {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\n", filepath.Base(si.Path), si.LSN, si.Size, created, status)
		}
	}
	tw.Flush()
	var total, used int64
	for _, sg := range info.WAL.Segments {
		total += sg.Size
		used += sg.Used
	}
	fmt.Fprintf(w, "\nWAL segments (%d, %d bytes in use of %d on disk, %d records):\n", len(info.WAL.Segments), used, total, info.WAL.Records)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// "bytes" is what the records use; a preallocated segment's file is
	// larger by its zeros ("file bytes").
	fmt.Fprintln(tw, "  file\tLSNs\trecords\tbytes\tfile bytes\ttorn tail")
	for _, sg := range info.WAL.Segments {
		lsns := "-"
		if sg.Records > 0 {
			lsns = fmt.Sprintf("%d..%d", sg.FirstLSN, sg.LastLSN)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\n", filepath.Base(sg.Path), lsns, sg.Records, sg.Used, sg.Size, sg.TornBytes)
	}
	tw.Flush()
	if info.WALErr != nil {
		fmt.Fprintf(w, "  WAL damage: %v\n", info.WALErr)
	}
	if info.RecoveryErr != nil {
		fmt.Fprintf(w, "\nrecovery: Open fails: %v\n", info.RecoveryErr)
	}
	if !full {
		fmt.Fprintln(w, "\nsnapshot blocks were not read; cidstore verify checks them")
	}
}
