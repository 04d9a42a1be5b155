package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cidstore/cidstore/cluster"
)

// runCluster changes or shows the membership of a replicated cluster
// through a member's HTTP control plane:
//
//	cidstore cluster status [-http ADDR] [-json]
//	cidstore cluster add    [-http ADDR] [-token-file F] NODE_HTTP
//	cidstore cluster remove [-http ADDR] [-token-file F] ID
//
// add asks the new node (at NODE_HTTP, started with -raft-id and neither
// -bootstrap nor -join) for its ID, raft address and client addresses and
// has the leader add it as a voter. Requests reaching a follower are
// redirected to the leader.
func runCluster(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: cluster add|remove|status [flags]", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := newFlags("cluster "+sub, stdout)
	addr := fs.String("http", "127.0.0.1:8000", "HTTP control plane of any member")
	tokenFile := fs.String("token-file", "", "file holding the bearer token (or set CIDSTORE_TOKEN)")
	asJSON := fs.Bool("json", false, "status: print the JSON that GET /cluster returns")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for an answer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	tok, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	c := &cluster.Client{Token: tok}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch {
	case sub == "status" && fs.NArg() == 0:
		st, err := c.Status(ctx, *addr)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		return printStatus(stdout, st)
	case sub == "add" && fs.NArg() == 1:
		ns, err := c.Node(ctx, fs.Arg(0))
		if err != nil {
			return fmt.Errorf("ask the new node at %s: %w", fs.Arg(0), err)
		}
		if err := c.AddVoter(ctx, *addr, cluster.AddRequest{ID: ns.ID, RaftAddr: ns.RaftAddr, Addrs: ns.Addrs}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s (raft %s)\n", ns.ID, ns.RaftAddr)
		return nil
	case sub == "remove" && fs.NArg() == 1:
		if err := c.Remove(ctx, *addr, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", fs.Arg(0))
		return nil
	}
	return fmt.Errorf("%w: cluster status [flags] | cluster add [flags] NODE_HTTP | cluster remove [flags] ID", errUsage)
}

// printStatus prints the cluster as a table.
func printStatus(w io.Writer, st cluster.Status) error {
	leader := st.Leader
	if leader == "" {
		leader = "(none known)"
	}
	fmt.Fprintf(w, "leader %s, term %d, commit index %d\n\n", leader, st.Term, st.CommitIndex)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tVOTER\tRAFT\tHTTP\tAPPLIED\tCOMMIT\tTERM\tLAST CONTACT\tADDRESSES")
	for _, m := range st.Members {
		var others []string
		for k, v := range m.Addrs {
			if k != "http" {
				others = append(others, k+"="+v)
			}
		}
		sort.Strings(others)
		state, applied, commit, term, contact := "?", "?", "?", "?", "?"
		if s := m.Status; s != nil {
			state = s.State
			applied, commit, term = fmt.Sprint(s.AppliedIndex), fmt.Sprint(s.CommitIndex), fmt.Sprint(s.Term)
			contact = fmt.Sprintf("%.0f ms", s.LastContactMS)
			if s.Stopped != "" {
				state += " (stopped: " + s.Stopped + ")"
			}
		} else if m.Error != "" {
			state = "unreachable: " + m.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, state, m.Voter, m.RaftAddr, m.Addrs["http"],
			applied, commit, term, contact, strings.Join(others, " "))
	}
	return tw.Flush()
}
