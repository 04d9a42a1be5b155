package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cidstore/cidstore/cluster"
	"github.com/cidstore/cidstore/replica"
	"github.com/cidstore/cidstore/server"
	"github.com/cidstore/cidstore/store"
)

// raftFlags are serve's flags for a replicated store.
type raftFlags struct {
	id, addr, join, read *string
	bootstrap            *bool
	joinTimeout          *time.Duration
}

func addRaftFlags(fs *flag.FlagSet) *raftFlags {
	return &raftFlags{
		id:          fs.String("raft-id", "", "serve a replica of a raft cluster with this node ID (raft's state in DIR/raft, the store in memory)"),
		addr:        fs.String("raft-addr", "127.0.0.1:7000", "raft's TCP address, which the other nodes dial (unauthenticated: keep it private)"),
		bootstrap:   fs.Bool("bootstrap", false, "start a new cluster with this node as its only voter (a no-op on restart)"),
		join:        fs.String("join", "", "join the cluster through this member's HTTP address (a no-op once a member)"),
		joinTimeout: fs.Duration("join-timeout", time.Minute, "how long -join keeps trying"),
		read:        fs.String("read", "linearizable", "replica reads: linearizable (leader only; followers redirect) or local (any node, possibly stale)"),
	}
}

// check validates the flags given DIR; mode is the read mode.
func (f *raftFlags) check(dir string) (mode replica.ReadMode, err error) {
	if *f.id == "" {
		if *f.bootstrap || *f.join != "" {
			return 0, fmt.Errorf("%w: -bootstrap and -join need -raft-id", errUsage)
		}
		return 0, nil
	}
	switch {
	case dir == "":
		return 0, fmt.Errorf("%w: -raft-id needs DIR for raft's log and snapshots", errUsage)
	case *f.bootstrap && *f.join != "":
		return 0, fmt.Errorf("%w: -bootstrap and -join exclude each other", errUsage)
	}
	mode, err = replica.ParseReadMode(*f.read)
	if err != nil {
		return 0, fmt.Errorf("%w: -read: %v", errUsage, err)
	}
	return mode, nil
}

// raftServe is a replica being served.
type raftServe struct {
	f       *raftFlags
	dir     string
	log     *slog.Logger
	token   string
	st      *store.Store
	backend *cluster.Backend
	node    *replica.Node
}

// newRaftServe opens the in-memory store and registers the cluster's
// endpoints on srv, before its control plane listens.
func newRaftServe(f *raftFlags, mode replica.ReadMode, dir string, opts store.Options, srv *server.Server, token string, log *slog.Logger) (*raftServe, error) {
	opts.InMemory = true // raft's log and snapshots are the durable record
	st, err := store.Open("", opts)
	if err != nil {
		return nil, err
	}
	rs := &raftServe{f: f, dir: dir, log: log, token: token, st: st, backend: cluster.NewBackend(st, mode)}
	cluster.Register(srv, rs.backend, &cluster.Client{Token: token})
	return rs, nil
}

// start opens the node, publishing addrs (the server's bound endpoints)
// as its metadata, and bootstraps or joins as the flags say.
func (rs *raftServe) start(ctx context.Context, addrs map[string]string) error {
	n, err := replica.Open(replica.Config{
		ID: *rs.f.id, Addr: *rs.f.addr, Dir: filepath.Join(rs.dir, "raft"), Store: rs.st,
		Meta: addrs, Logger: rs.log,
	})
	if err != nil {
		return err
	}
	rs.node = n
	rs.backend.SetNode(n)
	rs.log.Info("replica open", "id", n.ID(), "raft", n.Addr(), "read", *rs.f.read)
	switch {
	case *rs.f.bootstrap:
		return n.Bootstrap()
	case *rs.f.join != "":
		return rs.joinCluster(ctx, addrs)
	}
	return nil
}

// joinCluster asks the cluster to add this node, unless it is a member
// already, retrying until -join-timeout.
func (rs *raftServe) joinCluster(ctx context.Context, addrs map[string]string) error {
	if servers, err := rs.node.Servers(); err != nil || len(servers) > 0 {
		return err // restarted: a member already
	}
	ctx, cancel := context.WithTimeout(ctx, *rs.f.joinTimeout)
	defer cancel()
	c := &cluster.Client{Token: rs.token}
	req := cluster.AddRequest{ID: rs.node.ID(), RaftAddr: rs.node.Addr(), Addrs: addrs}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.AddVoter(ctx, *rs.f.join, req)
		if err == nil {
			rs.log.Info("joined the cluster", "through", *rs.f.join)
			return nil
		}
		var ae *cluster.APIError
		if errors.As(err, &ae) && (ae.Status == 400 || ae.Status == 401 || ae.Status == 403) {
			return fmt.Errorf("join through %s: %w", *rs.f.join, err)
		}
		rs.log.Info("join: retrying", "through", *rs.f.join, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join through %s: %w (last error: %v)", *rs.f.join, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// handOff passes the leadership on before this node stops, so that the
// others need not wait for an election timeout.
func (rs *raftServe) handOff() {
	if rs.node == nil || !rs.node.IsLeader() {
		return
	}
	if err := rs.node.TransferLeadership(); err != nil {
		rs.log.Info("leadership not handed over", "err", err)
		return
	}
	rs.log.Info("leadership handed over")
}

// close closes the node, then the store.
func (rs *raftServe) close() error {
	var err error
	if rs.node != nil {
		err = rs.node.Close()
	}
	return errors.Join(err, rs.st.Close())
}

// closeIfAny closes rs's store when there is one (a nil rs is no replica).
func (rs *raftServe) closeIfAny() error {
	if rs == nil {
		return nil
	}
	return rs.close()
}
