package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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

// Default timeouts. raft's own defaults (1 s heartbeat and election
// timeouts) let a follower wait up to 2 s before it even starts an
// election; these halve that, so a leader's loss is noticed after 0.5 to
// 1 s and a new leader commits its first write well under 2 s later
// (BenchmarkFailover). Heartbeats go out every HeartbeatTimeout/10. The
// leader lease, how long a leader keeps leading without hearing from a
// majority, is as long as it may be (the heartbeat timeout): a shorter
// one made leaders of a loopback cluster on a busy two-core machine step
// down under write load, when a heartbeat's answer took 300 ms. Shorter
// timeouts cost spurious elections on a loaded machine or a slow network.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
	DefaultApplyTimeout       = 10 * time.Second
)

// Config configures a Node. ID, Addr (or Transport), Store and Dir (or all
// three of LogStore, StableStore and SnapshotStore) are required.
type Config struct {
	// ID names this node in the cluster, for good: it must be unique and
	// must not change across restarts.
	ID string

	// Addr is the host:port raft listens on (TCP) and tells its peers,
	// so it must name an address they can reach (not 0.0.0.0). Use a
	// loopback or private address: raft's traffic is neither
	// authenticated nor encrypted. Port 0 picks a free port (see
	// Node.Addr); a restarted node must keep its address, which the
	// cluster's configuration records.
	Addr string

	// Dir holds raft's state: raft.db (the log and the stable store, a
	// bbolt database) and snapshots/. It is created (0700) if needed.
	Dir string

	// Store is the state machine. A node that has never bootstrapped or
	// joined needs an empty store; a restarted node needs its previous
	// store or an empty one (see the package documentation). An in-memory
	// store is the right choice: raft's log and snapshots are the durable
	// record. The caller closes the store after the node.
	Store *store.Store

	// Meta is what this node publishes to the cluster, typically the
	// addresses its clients use (for example {"resp": "127.0.0.1:6379"}),
	// so that any node can redirect a client to the leader. It is
	// replicated through the log; see Node.Leader.
	Meta map[string]string

	// Timeouts; 0 means the Default above. ElectionTimeout must not be
	// below HeartbeatTimeout, nor LeaderLeaseTimeout above it.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration

	// ApplyTimeout bounds how long the write methods without a context
	// (Insert, Delete, DeleteKey, InsertBatch) wait to get a command
	// into the log; 0 means DefaultApplyTimeout.
	ApplyTimeout time.Duration

	// Snapshots: raft snapshots the store when SnapshotThreshold entries
	// were logged since the last snapshot, checking every
	// SnapshotInterval or so, and keeps TrailingLogs entries behind it
	// for followers that lag a little; SnapshotsRetained snapshots stay
	// on disk. 0 means raft's defaults (8192 entries, 2 minutes, 10240
	// entries, 2 snapshots).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotsRetained int

	// MaxAppendEntries is the most entries raft appends to its log, and
	// sends a follower, in one go; 0 means raft's default, 64. More lets
	// many concurrent small writes share one log write under load.
	MaxAppendEntries int

	// Logger receives the node's and raft's messages; nil discards them.
	Logger *slog.Logger

	// Transport, LogStore, StableStore and SnapshotStore replace what
	// the node builds from Addr and Dir; tests use raft's in-memory
	// implementations. A node does not close what it was given.
	Transport     raft.Transport
	LogStore      raft.LogStore
	StableStore   raft.StableStore
	SnapshotStore raft.SnapshotStore
}

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

func (c *Config) normalize() error {
	switch {
	case c.ID == "":
		return errors.New("replica: Config.ID is required")
	case c.Store == nil:
		return errors.New("replica: Config.Store is required")
	case c.Transport == nil && c.Addr == "":
		return errors.New("replica: Config.Addr is required")
	case c.Dir == "" && (c.LogStore == nil || c.StableStore == nil || c.SnapshotStore == nil):
		return errors.New("replica: Config.Dir is required")
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = min(DefaultLeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
	if c.SnapshotsRetained <= 0 {
		c.SnapshotsRetained = 2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Meta = maps.Clone(c.Meta)
	return nil
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

// Bootstrap makes this node the first member of a new cluster, with
// itself as the only voter. It is a no-op on a node that already has raft
// state (a restart), so a server may call it on every start.
func (n *Node) Bootstrap() error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.leave()
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.ID), Address: n.trans.LocalAddr(),
	}}}).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil
	}
	return err
}

// AddVoter adds the node id, listening at raft address addr, as a voter,
// with the metadata it publishes (nil for none). Only the leader can; a
// follower returns a *NotLeaderError. The new node catches up from the
// log, or from a snapshot when the log no longer reaches back far enough.
// Adding a node that is already a member updates its address.
func (n *Node) AddVoter(ctx context.Context, id, addr string, meta map[string]string) error {
	if meta != nil {
		if _, err := n.Apply(ctx, metaCommand(id, meta)); err != nil {
			return err
		}
	}
	if err := n.enter(); err != nil {
		return err
	}
	defer n.leave()
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.timeout(ctx))
	return n.raftErr(f.Error())
}

// RemoveServer removes the node id from the cluster. Only the leader can;
// a follower returns a *NotLeaderError. A leader may remove itself: it
// steps down once the change is committed.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := n.remove(ctx, id); err != nil {
		return err
	}
	if id != n.cfg.ID && n.fsm.metaOf(id) != nil {
		// Tidy up; the member is gone either way.
		if _, err := n.Apply(ctx, metaCommand(id, nil)); err != nil {
			n.log.Warn("replica: could not drop a removed node's metadata", "id", id, "err", err)
		}
	}
	return nil
}

func (n *Node) remove(ctx context.Context, id string) error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.leave()
	return n.raftErr(n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx)).Error())
}

func metaCommand(id string, meta map[string]string) Command {
	return Command{kind: kindMeta, meta: &metaChange{ID: id, Meta: maps.Clone(meta)}}
}

// Leader returns the leader this node knows of, and false when it knows
// none (during an election, or when cut off from the majority).
func (n *Node) Leader() (Server, bool) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return Server{}, false
	}
	return Server{ID: string(id), Addr: string(addr), Voter: true, Meta: n.fsm.metaOf(string(id))}, true
}

// WaitLeader waits until this node knows a leader (itself or another)
// and returns it, or until ctx is done or the node closes.
func (n *Node) WaitLeader(ctx context.Context) (Server, error) {
	ch := make(chan raft.Observation, 1)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	for {
		if l, ok := n.Leader(); ok {
			return l, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Server{}, ctx.Err()
		case <-n.ctx.Done():
			return Server{}, ErrClosed
		}
	}
}

// IsLeader reports whether this node is the leader right now. A leader
// cut off from the majority believes it is for up to LeaderLeaseTimeout:
// writes and linearizable reads, which check with the majority, are safe
// either way.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// watchLeadership prepares each new leadership term: one barrier so that
// the first linearizable read need not wait for it, and the node's
// metadata published if the cluster does not have it yet.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	ch := n.raft.LeaderCh()
	for {
		select {
		case <-n.ctx.Done():
			return
		case leader := <-ch:
			if !leader {
				continue
			}
			if err := n.prepareNewTerm(); err != nil {
				n.log.Debug("replica: barrier of a new term failed", "err", err)
				continue
			}
			if n.cfg.Meta != nil && !maps.Equal(n.fsm.metaOf(n.cfg.ID), n.cfg.Meta) {
				ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
				if _, err := n.Apply(ctx, metaCommand(n.cfg.ID, n.cfg.Meta)); err != nil {
					n.log.Warn("replica: could not publish this node's metadata", "err", err)
				}
				cancel()
			}
		}
	}
}

// prepareNewTerm runs prepareTerm through the gate.
func (n *Node) prepareNewTerm() error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.leave()
	return n.prepareTerm()
}

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
