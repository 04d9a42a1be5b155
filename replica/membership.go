package replica

import (
	"context"
	"errors"
	"maps"

	"github.com/hashicorp/raft"
)

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

// TransferLeadership asks the leader to hand its leadership to the most
// up-to-date follower and step down, so that a leader about to stop does
// not leave the cluster waiting for an election timeout. A follower
// returns a *NotLeaderError; a one-node cluster an error (there is no
// one to hand over to).
func (n *Node) TransferLeadership() error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.leave()
	return n.raftErr(n.raft.LeadershipTransfer().Error())
}

// Meta returns what this node publishes (Config.Meta).
func (n *Node) Meta() map[string]string { return maps.Clone(n.cfg.Meta) }
