package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/cidstore/cidstore/store"
)

// Server is one member of the cluster.
type Server struct {
	ID    string
	Addr  string            // raft address
	Voter bool              // votes and counts toward the quorum
	Meta  map[string]string // what the node published (Config.Meta)
}

// Result is what applying a command returned. Changed is the store's
// count where its method returns one (for example the triples a triple
// batch added or removed) and 0 otherwise.
type Result struct {
	Changed int
	// ChangedOps, for a pair command, tells for each of its operations
	// whether it changed the store (judged in order, as
	// store.Store.ApplyPairs does); Changed counts them. Nil otherwise.
	ChangedOps []bool
}

// Node is one replica: a raft server whose state machine is a store.
// Writes go through the leader's log; reads come from the local store,
// after confirming leadership for a linearizable read. All methods are
// safe for concurrent use.
type Node struct {
	cfg    Config
	raft   *raft.Raft
	fsm    *fsm
	trans  raft.Transport
	owned  []func() error // what Close closes after raft, in order
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	readyTerm atomic.Uint64 // a barrier of this term was applied (see Read)
	gather    gatherer      // small pair commands gathered into entries

	// gate is held shared by every call that waits on a raft future, and
	// exclusively around raft's shutdown. raft does not answer a future
	// still queued when it shuts down (its Apply and VerifyLeader futures
	// do not watch for shutdown), so it must never shut down under one.
	gate      sync.RWMutex
	closed    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Open starts a node. A node with no raft state waits to be bootstrapped
// (Bootstrap) or added to a cluster by its leader (AddVoter); a node with
// state rejoins its cluster and catches up.
func Open(cfg Config) (_ *Node, err error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel}
	defer func() {
		if err != nil { // close what was opened
			cancel()
			err = errors.Join(err, n.closeOwned())
		}
	}()
	if err := n.openStorage(); err != nil {
		return nil, err
	}
	fresh, err := n.fresh()
	if err != nil {
		return nil, err
	}
	if fresh && cfg.Store.Len() != 0 {
		return nil, ErrStoreNotEmpty
	}
	n.fsm = &fsm{st: cfg.Store, log: cfg.Logger, ctx: ctx, meta: map[string]map[string]string{}, onStop: n.stopped}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.BatchApplyCh = true
	// raft must not shut itself down when removed: only Close and a
	// stopped state machine may, through the gate.
	rc.ShutdownOnRemove = false
	rc.Logger = newHCLogger(cfg.Logger)
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.MaxAppendEntries > 0 {
		rc.MaxAppendEntries = cfg.MaxAppendEntries
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, n.cfg.LogStore, n.cfg.StableStore, n.cfg.SnapshotStore, n.trans)
	if err != nil {
		return nil, fmt.Errorf("replica: start raft: %w", err)
	}
	n.raft = r
	n.wg.Add(1)
	go n.watchLeadership()
	return n, nil
}

// openStorage opens what Config did not provide: the bbolt log and stable
// store, the snapshot store and the TCP transport.
func (n *Node) openStorage() error {
	c := &n.cfg
	if c.Dir != "" {
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return fmt.Errorf("replica: %w", err)
		}
	}
	if c.LogStore == nil || c.StableStore == nil {
		bolt, err := raftboltdb.New(raftboltdb.Options{
			Path: filepath.Join(c.Dir, "raft.db"),
			BoltOptions: &bbolt.Options{
				Timeout:        time.Second, // another process holds it: fail, do not hang
				NoFreelistSync: true,        // one page less to write per commit
				FreelistType:   bbolt.FreelistMapType,
			},
		})
		if err != nil {
			return fmt.Errorf("replica: open %s: %w", filepath.Join(c.Dir, "raft.db"), err)
		}
		n.owned = append(n.owned, bolt.Close)
		if c.StableStore == nil {
			c.StableStore = bolt
		}
		if c.LogStore == nil {
			cache, err := raft.NewLogCache(logCacheSize, bolt)
			if err != nil {
				return fmt.Errorf("replica: %w", err)
			}
			c.LogStore = cache
		}
	}
	if c.SnapshotStore == nil {
		snaps, err := raft.NewFileSnapshotStoreWithLogger(c.Dir, c.SnapshotsRetained, newHCLogger(c.Logger))
		if err != nil {
			return fmt.Errorf("replica: %w", err)
		}
		c.SnapshotStore = snaps
	}
	n.trans = c.Transport
	if n.trans == nil {
		stream, err := listenTCP(c.Addr)
		if err != nil {
			return fmt.Errorf("replica: listen on %s: %w", c.Addr, err)
		}
		t := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: newHCLogger(c.Logger),
		})
		n.trans = t
		n.owned = append([]func() error{t.Close}, n.owned...)
	}
	return nil
}

// logCacheSize is how many recent entries raft keeps in memory, so that
// replicating them to followers does not read them back from bbolt.
const logCacheSize = 512

// fresh reports whether the node has no raft state yet.
func (n *Node) fresh() (bool, error) {
	has, err := raft.HasExistingState(n.cfg.LogStore, n.cfg.StableStore, n.cfg.SnapshotStore)
	if err != nil {
		return false, fmt.Errorf("replica: read raft state: %w", err)
	}
	return !has, nil
}

// ID returns the node's ID.
func (n *Node) ID() string { return n.cfg.ID }

// Addr returns the node's raft address (with the port picked when
// Config.Addr asked for port 0).
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// Store returns the node's store, for local reads (see Read). Writing to
// it directly bypasses replication and makes this replica differ from the
// others: write through the Node.
func (n *Node) Store() *store.Store { return n.cfg.Store }

// stopped is the state machine's report that it stopped applying: the
// node leaves the cluster's work to the others by shutting raft down.
func (n *Node) stopped(error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.shutdown(); err != nil {
			n.log.Error("replica: raft shutdown after the state machine stopped", "err", err)
		}
	}()
}

// enter admits a call that will wait on raft, or says why the node
// cannot serve. A call admitted must leave.
func (n *Node) enter() error {
	n.gate.RLock()
	if err := n.usable(); err != nil {
		n.gate.RUnlock()
		return err
	}
	return nil
}

func (n *Node) leave() { n.gate.RUnlock() }

// shutdown shuts raft down once no call waits on it. New calls wait for
// the gate and then find the node closed or stopped.
func (n *Node) shutdown() error {
	n.gate.Lock()
	defer n.gate.Unlock()
	return n.raft.Shutdown().Error()
}

// usable returns why the node cannot serve, if it cannot.
func (n *Node) usable() error {
	if n.closed.Load() {
		return ErrClosed
	}
	return n.fsm.stoppedErr()
}

// timeout is how long raft may take to queue a request: until ctx's
// deadline, at most ApplyTimeout.
func (n *Node) timeout(ctx context.Context) time.Duration {
	d := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	return d
}

// notLeader returns the error of a node that is not the leader.
func (n *Node) notLeader() error {
	l, _ := n.Leader()
	return &NotLeaderError{Leader: l}
}

// raftErr maps an error of a raft future to the package's errors.
func (n *Node) raftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrTimeout
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		// The command may have been logged, even committed, before the
		// shutdown.
		return fmt.Errorf("%w: %w", ErrClosed, ErrUnknownOutcome)
	}
	return err
}

// Close stops the node: calls in flight finish first (raft answers each
// within its timeouts), then raft shuts down (an in-flight snapshot is
// abandoned), the transport and raft's files are closed, and every
// goroutine the node started has ended when Close returns. Close does not
// close the store. It is idempotent; later calls return ErrClosed.
func (n *Node) Close() error {
	err := ErrClosed
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		n.cancel()
		err = n.shutdown()
		n.wg.Wait()
		err = errors.Join(err, n.closeOwned())
	})
	return err
}

func (n *Node) closeOwned() error {
	var errs []error
	for _, c := range n.owned {
		errs = append(errs, c())
	}
	n.owned = nil
	return errors.Join(errs...)
}
