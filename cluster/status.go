package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/cidstore/cidstore/replica"
)

// NodeStatus is one node's own status (GET /cluster/node).
type NodeStatus struct {
	ID            string            `json:"id"`
	RaftAddr      string            `json:"raft_addr"`
	State         string            `json:"state"`  // Leader, Follower, Candidate or Shutdown
	Leader        string            `json:"leader"` // the leader's ID, "" when none is known
	Term          uint64            `json:"term"`
	LastIndex     uint64            `json:"last_index"`
	CommitIndex   uint64            `json:"commit_index"`
	AppliedIndex  uint64            `json:"applied_index"`
	SnapshotIndex uint64            `json:"snapshot_index"`
	Restores      int64             `json:"restores"`
	LastContactMS float64           `json:"last_contact_ms"` // since the leader was last heard from; 0 on the leader, -1 never
	Addrs         map[string]string `json:"addrs"`           // what the node published
	Stopped       string            `json:"stopped,omitempty"`
}

// Member is one member of the cluster with its status as it reported it
// (GET /cluster). Error says why its status is missing.
type Member struct {
	ID       string            `json:"id"`
	RaftAddr string            `json:"raft_addr"`
	Voter    bool              `json:"voter"`
	Addrs    map[string]string `json:"addrs"`
	Status   *NodeStatus       `json:"status,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// Status is the cluster as one node sees it (GET /cluster): the leader,
// its term and commit index (as the leader reports them, or as the
// answering node knows them when the leader does not answer), and every
// member with the status it reported.
type Status struct {
	Leader      string   `json:"leader"`
	Term        uint64   `json:"term"`
	CommitIndex uint64   `json:"commit_index"`
	Members     []Member `json:"members"`
}

func nodeStatus(s replica.Status, meta map[string]string) NodeStatus {
	lc := float64(-1)
	if s.LastContact >= 0 {
		lc = float64(s.LastContact) / float64(time.Millisecond)
	}
	return NodeStatus{
		ID: s.ID, RaftAddr: s.Addr, State: s.State, Leader: s.Leader.ID, Term: s.Term,
		LastIndex: s.LastIndex, CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex,
		SnapshotIndex: s.SnapshotIndex, Restores: s.Restores, LastContactMS: lc,
		Addrs: meta, Stopped: s.Stopped,
	}
}

// memberTimeout bounds asking one member for its status.
const memberTimeout = 2 * time.Second

// clusterStatus asks every member for its status, at once.
func clusterStatus(ctx context.Context, n *replica.Node, c *Client) Status {
	self := n.Status()
	out := Status{Leader: self.Leader.ID, Term: self.Term, CommitIndex: self.CommitIndex}
	out.Members = make([]Member, len(self.Servers))
	var wg sync.WaitGroup
	for i, s := range self.Servers {
		m := &out.Members[i]
		*m = Member{ID: s.ID, RaftAddr: s.Addr, Voter: s.Voter, Addrs: s.Meta}
		if s.ID == self.ID {
			ns := nodeStatus(self, n.Meta())
			m.Status = &ns
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns, err := c.Node(ctx, s.Meta["http"])
			if err != nil {
				m.Error = err.Error()
				return
			}
			m.Status = &ns
		}()
	}
	wg.Wait()
	for _, m := range out.Members {
		if m.ID == out.Leader && m.Status != nil {
			out.Term, out.CommitIndex = m.Status.Term, m.Status.CommitIndex
		}
	}
	return out
}
