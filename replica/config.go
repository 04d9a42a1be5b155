package replica

import (
	"errors"
	"log/slog"
	"maps"
	"time"

	"github.com/hashicorp/raft"

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

// normalize checks the required fields and fills in the defaults.
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
