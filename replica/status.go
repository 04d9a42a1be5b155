package replica

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Status is a node's view of itself and its cluster.
type Status struct {
	ID    string
	Addr  string // raft address
	State string // "Leader", "Follower", "Candidate" or "Shutdown"

	// Leader is the leader this node knows of (ID empty: none known).
	Leader Server

	Term          uint64
	LastIndex     uint64 // last entry in this node's log (or snapshot)
	CommitIndex   uint64 // last entry this node knows to be committed
	AppliedIndex  uint64 // last entry its store applied (raft's own no-op and barrier entries do not count)
	SnapshotIndex uint64 // last entry covered by its newest snapshot

	// Restores counts the snapshots restored into the store since the
	// node started: at start, and whenever it fell too far behind.
	Restores int64

	// LastContact is how long ago a follower last heard from its leader
	// (0 on the leader, -1 if never).
	LastContact time.Duration

	// Servers is the latest cluster configuration, with each member's
	// published metadata, ordered by ID.
	Servers []Server

	// Stopped is why the state machine stopped applying ("" while it
	// runs); see ErrStopped.
	Stopped string
}

// Status returns the node's status. Each node reports its own indexes:
// a cluster-wide view asks every member.
func (n *Node) Status() Status {
	st := Status{
		ID:           n.cfg.ID,
		Addr:         n.Addr(),
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		LastIndex:    n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.applied.Load(),
		Restores:     n.fsm.restores.Load(),
		LastContact:  -1,
	}
	st.Leader, _ = n.Leader()
	if n.raft.State() == raft.Leader {
		st.LastContact = 0
	} else if t := n.raft.LastContact(); !t.IsZero() {
		st.LastContact = time.Since(t)
	}
	if s, ok := n.raft.Stats()["last_snapshot_index"]; ok {
		st.SnapshotIndex, _ = strconv.ParseUint(s, 10, 64)
	}
	if err := n.fsm.stoppedErr(); err != nil {
		st.Stopped = err.Error()
	}
	st.Servers, _ = n.Servers()
	return st
}

// Servers returns the latest cluster configuration (it may not be
// committed yet), with each member's published metadata, ordered by ID.
func (n *Node) Servers() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.raftErr(err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{
			ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter,
			Meta: n.fsm.metaOf(string(s.ID)),
		})
	}
	slices.SortFunc(out, func(a, b Server) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
