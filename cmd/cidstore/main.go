package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout io.Writer) error
}

// errUsage marks an error caused by bad command-line input.
var errUsage = errors.New("usage")

func commands() []command {
	return []command{
		{"version", "", "print the version", runVersion},
		{"bench", "[flags]", "sweep shard counts over read-heavy, mixed and write-heavy workloads (memory and SyncAlways)", runBench},
		{"repair", "[-v] DIR", "repair a damaged store so that it opens again (moves damaged files aside)", runRepair},
		{"inspect", "[-metrics] DIR", "summarise a store directory (or print its metrics)", runInspect},
		{"verify", "DIR", "validate the directory as Open does; non-zero exit on damage", runVerify},
		{"dump", "DIR FILE", "export a consistent snapshot stream of a store", runDump},
		{"load", "FILE DIR", "import a snapshot stream into a new or empty store", runLoad},
		{"serve", "[flags] DIR", "serve a store over ZeroMQ/msgpack, RESP and HTTP (-memory: in memory; -raft-id: a replica)", runServe},
		{"cluster", "add|remove|status", "change or show the membership of a replicated cluster", runCluster},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "cidstore %s: %v\n", c.name, err)
				return 2
			default:
				fmt.Fprintf(stderr, "cidstore %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "cidstore: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cidstore <command> [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %-24s %s\n", c.name, c.args, c.summary)
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cidstore "+name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
