package replica

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/cidstore/cidstore/store"
)

const raftLeader = raft.Leader

// ReadMode says what a read may see.
type ReadMode int

const (
	// Linearizable reads see every write acknowledged before the read
	// began, and nothing older than what an earlier linearizable read
	// saw: the cluster behaves as one store. Only the leader serves them.
	Linearizable ReadMode = iota
	// Local reads come from this node's store at once, on any node. They
	// see a prefix of the committed log that never shrinks on one node,
	// but may lag the leader by the time replication takes, or by much
	// more on a node cut off from the leader.
	Local
)

// String returns "linearizable" or "local".
func (m ReadMode) String() string {
	switch m {
	case Linearizable:
		return "linearizable"
	case Local:
		return "local"
	}
	return fmt.Sprintf("ReadMode(%d)", int(m))
}

// ParseReadMode parses the names String returns.
func ParseReadMode(s string) (ReadMode, error) {
	switch s {
	case "linearizable":
		return Linearizable, nil
	case "local":
		return Local, nil
	}
	return 0, fmt.Errorf("replica: unknown read mode %q (want linearizable or local)", s)
}

// Read returns the store to read from once a read in mode may proceed:
// at once for Local; for Linearizable, once this node has confirmed it is
// still the leader, which costs one round of heartbeats to the majority
// (no disk write). On a node that is not the leader a linearizable read
// returns a *NotLeaderError.
//
// Why this is linearizable (raft's read-index argument, with
// hashicorp/raft's primitives): a leader answers a write only after its
// own store applied it, and in each term, before its first read, it
// applies a Barrier, which applies every entry committed by earlier
// leaders. So when a read begins, the leader's store holds every write
// acknowledged in this term or before. VerifyLeader then asks the
// majority: if it still follows this leader in the same term, no newer
// leader can have acknowledged anything, so nothing acknowledged is
// missing. Point reads of one key are linearizable; a multi-key read sees
// the keys of an atomic batch as point reads of the store do (see package
// store).
func (n *Node) Read(ctx context.Context, mode ReadMode) (*store.Store, error) {
	if err := n.usable(); err != nil {
		return nil, err
	}
	switch mode {
	case Local:
		return n.cfg.Store, nil
	case Linearizable:
		if err := n.enter(); err != nil {
			return nil, err
		}
		defer n.leave()
		if err := n.linearizable(ctx); err != nil {
			return nil, err
		}
		return n.cfg.Store, nil
	}
	return nil, fmt.Errorf("replica: unknown read mode %d", int(mode))
}

// linearizable (called through the gate) returns once a linearizable read may read the local store.
func (n *Node) linearizable(ctx context.Context) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() != term {
		if err := n.prepareTerm(); err != nil {
			return err
		}
		if n.readyTerm.Load() != term {
			return n.notLeader() // the term moved on meanwhile
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := n.raftErr(n.raft.VerifyLeader().Error()); err != nil {
		return err
	}
	// The confirmation must have happened in the term the barrier
	// prepared: terms only grow, so an unchanged term proves it.
	if n.raft.CurrentTerm() != term {
		return n.notLeader()
	}
	return nil
}

// prepareTerm (called through the gate) applies a barrier and then records the term read before it
// as prepared: if the barrier was logged in a later term, the recorded
// term no longer matches and the next read prepares again.
func (n *Node) prepareTerm() error {
	term := n.raft.CurrentTerm()
	if err := n.raftErr(n.raft.Barrier(n.cfg.ApplyTimeout).Error()); err != nil {
		return err
	}
	for {
		cur := n.readyTerm.Load()
		if cur >= term || n.readyTerm.CompareAndSwap(cur, term) {
			return nil
		}
	}
}
