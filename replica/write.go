package replica

import (
	"context"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Apply runs c through the cluster: the leader logs it, replicates it,
// and once a majority has it durably in their logs (committed) applies it
// to its store and returns the store's answer. It returns when that is
// done, so a read that starts afterwards sees the write (see Read).
//
// Only the leader applies: elsewhere Apply returns a *NotLeaderError
// naming the leader, for the caller to redirect or forward. The errors
// say whether the command can have taken effect:
//
//   - nil: committed and applied; the error from the store, if any, is
//     the store's own answer (such as ErrInvalidCID, checked before the
//     command is logged), as a single store would give it;
//   - ErrNotLeader, ErrTimeout, ErrBadCommand: not logged, no effect;
//   - ErrUnknownOutcome (also with ErrClosed when the node closed
//     meanwhile): logged, but leadership was lost before it was known to
//     be committed; it may yet take effect;
//   - ErrStopped: this node's state machine stopped (see Status).
//
// ctx bounds the wait to get the command into the log; once it is in,
// Apply waits for the outcome, which raft bounds: it is known on commit,
// or when leadership is lost (LeaderLeaseTimeout after the majority
// stops answering).
func (n *Node) Apply(ctx context.Context, c Command) (Result, error) {
	if err := n.enter(); err != nil {
		return Result{}, err
	}
	defer n.leave()
	if c.Len() == 0 {
		return Result{}, nil // as the store: an empty batch is a no-op
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	if n.raft.State() != raftLeader {
		return Result{}, n.notLeader()
	}
	d := n.timeout(ctx)
	if d <= 0 {
		return Result{}, ErrTimeout
	}
	if c.kind == kindPairs && len(c.pairs) <= gatherMaxOps {
		return n.applyGathered(c, d) // see gather.go
	}
	data, err := c.MarshalBinary()
	if err != nil {
		return Result{}, err
	}
	f := n.raft.Apply(data, d)
	if err := n.raftErr(f.Error()); err != nil {
		return Result{}, err
	}
	r, _ := f.Response().(result)
	return Result{Changed: r.changed, ChangedOps: r.ops}, r.err
}

// apply runs c with the ApplyTimeout, for the store-shaped methods.
func (n *Node) apply(c Command) error {
	_, err := n.applyCount(c)
	return err
}

func (n *Node) applyCount(c Command) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	r, err := n.Apply(ctx, c)
	return r.Changed, err
}

// Insert adds v to the values of k through the cluster, as Store.Insert
// does on one store; see Apply for the errors.
func (n *Node) Insert(k, v cid.CID) error { return n.apply(Insert(k, v)) }

// Delete removes v from the values of k through the cluster, as
// Store.Delete does; see Apply for the errors.
func (n *Node) Delete(k, v cid.CID) error { return n.apply(Delete(k, v)) }

// DeleteKey removes k with all its values through the cluster, as
// Store.DeleteKey does; see Apply for the errors.
func (n *Node) DeleteKey(k cid.CID) error { return n.apply(DeleteKey(k)) }

// InsertBatch inserts pairs as one atomic unit through the cluster, as
// Store.InsertBatch does on one store; see Apply for the errors.
func (n *Node) InsertBatch(pairs []store.Pair) error { return n.apply(InsertBatch(pairs)) }

// ApplyBatch applies a mixed batch of pair operations as one atomic unit,
// in order, through the cluster, as Store.ApplyBatch does on one store;
// see Apply for the errors.
func (n *Node) ApplyBatch(ops []store.PairOp) error { return n.apply(ApplyBatch(ops)) }

// InsertTriples inserts ts as one atomic unit through the cluster and
// returns how many were new, as Store.InsertTriples does; see Apply for
// the errors.
func (n *Node) InsertTriples(ts []store.Triple) (added int, err error) {
	return n.applyCount(InsertTriples(ts))
}

// DeleteTriples deletes ts as one atomic unit through the cluster and
// returns how many were present, as Store.DeleteTriples does; see Apply
// for the errors.
func (n *Node) DeleteTriples(ts []store.Triple) (removed int, err error) {
	return n.applyCount(DeleteTriples(ts))
}

// ApplyTriples applies triple inserts and deletes as one atomic unit, in
// order, through the cluster and returns how many changed the store, as
// Store.ApplyTriples does; see Apply for the errors.
func (n *Node) ApplyTriples(ops []store.TripleOp) (changed int, err error) {
	return n.applyCount(ApplyTriples(ops))
}
