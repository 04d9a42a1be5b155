package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync/atomic"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/replica"
	"github.com/cidstore/cidstore/server"
	"github.com/cidstore/cidstore/store"
)

// Backend serves a replica.Node through the server: mutations go through
// the cluster's log, reads come from the node's store after BeforeRead.
// Until SetNode it answers every command with 503, so a server can bind
// its endpoints first and publish their addresses in the node's metadata.
type Backend struct {
	st   *store.Store
	mode replica.ReadMode
	node atomic.Pointer[replica.Node]
}

var (
	_ server.Backend     = (*Backend)(nil)
	_ server.ReadBarrier = (*Backend)(nil)
)

// NewBackend returns a Backend over st, the store the node will apply
// its log to, with reads in mode.
func NewBackend(st *store.Store, mode replica.ReadMode) *Backend {
	return &Backend{st: st, mode: mode}
}

// SetNode makes the Backend serve through n, whose store must be the
// Backend's.
func (b *Backend) SetNode(n *replica.Node) { b.node.Store(n) }

// Node returns the node, or nil before SetNode.
func (b *Backend) Node() *replica.Node { return b.node.Load() }

// errStarting answers commands before SetNode.
var errStarting = server.NewError(server.CodeUnavailable, "the replica is starting", nil)

func (b *Backend) apply(c replica.Command) (int, error) {
	n := b.node.Load()
	if n == nil {
		return 0, errStarting
	}
	r, err := n.Apply(context.Background(), c)
	return r.Changed, Error(err)
}

// InsertTriples adds ts through the cluster.
func (b *Backend) InsertTriples(ts []store.Triple) (int, error) {
	return b.apply(replica.InsertTriples(ts))
}

// DeleteTriples removes ts through the cluster.
func (b *Backend) DeleteTriples(ts []store.Triple) (int, error) {
	return b.apply(replica.DeleteTriples(ts))
}

// ApplyPairs applies pair operations through the cluster as one batch
// and returns how many changed the store; when changed is not nil (of
// len(ops)), it also says which, as the leader's state machine found them.
func (b *Backend) ApplyPairs(ops []store.PairOp, changed []bool) (int, error) {
	if changed != nil && len(changed) != len(ops) {
		return 0, server.NewError(server.CodeBadRequest, fmt.Sprintf("%d operations but %d change flags", len(ops), len(changed)), nil)
	}
	n := b.node.Load()
	if n == nil {
		return 0, errStarting
	}
	r, err := n.Apply(context.Background(), replica.ApplyBatch(ops))
	if err != nil {
		return 0, Error(err)
	}
	clear(changed)
	copy(changed, r.ChangedOps)
	return r.Changed, nil
}

// CountTriples reads the local store (after BeforeRead).
func (b *Backend) CountTriples(s, p, o cid.CID) int { return b.st.CountTriples(s, p, o) }

// Contains reads the local store (after BeforeRead).
func (b *Backend) Contains(k, v cid.CID) bool { return b.st.Contains(k, v) }

// Count reads the local store (after BeforeRead).
func (b *Backend) Count(k cid.CID) int { return b.st.Count(k) }

// Range reads the local store (after BeforeRead).
func (b *Backend) Range(from, to cid.CID) iter.Seq2[cid.CID, []cid.CID] { return b.st.Range(from, to) }

// BeforeRead allows a read in the Backend's mode, or says why not: a
// follower redirects linearizable reads to the leader.
func (b *Backend) BeforeRead(ctx context.Context) error {
	n := b.node.Load()
	if n == nil {
		return errStarting
	}
	_, err := n.Read(ctx, b.mode)
	return Error(err)
}

// Query reads the local store (after BeforeRead).
func (b *Backend) Query(s, p, o cid.CID) iter.Seq[store.Triple] { return b.st.Query(s, p, o) }

// TripleCount reads the local store.
func (b *Backend) TripleCount() int { return b.st.TripleCount() }

// AppendValues reads the local store (after BeforeRead).
func (b *Backend) AppendValues(dst []cid.CID, k cid.CID) []cid.CID { return b.st.AppendValues(dst, k) }

// Stats returns the local store's counters.
func (b *Backend) Stats() store.Stats { return b.st.Stats() }

// WritePrometheus writes the local store's metrics.
func (b *Backend) WritePrometheus(w io.Writer) error { return b.st.WritePrometheus(w) }

// Config returns the local store's configuration.
func (b *Backend) Config() store.Config { return b.st.Config() }

// UpdateConfig changes the local store's configuration (each node has
// its own).
func (b *Backend) UpdateConfig(fn func(store.Config) store.Config) error {
	return b.st.UpdateConfig(fn)
}

// Checkpoint takes a raft snapshot of this node now (POST /checkpoint):
// the store is in memory, raft's snapshots and log are its durable record.
func (b *Backend) Checkpoint(context.Context) error {
	n := b.node.Load()
	if n == nil {
		return errStarting
	}
	return Error(n.Snapshot())
}

// Error turns a replica error into the server's: a *NotLeaderError that
// names a leader becomes a redirect (CodeRedirect, with the leader's
// published addresses); the errors of a write that had no effect or whose
// outcome is unknown, of an election under way and of a closed or stopped
// node become 503. Errors the store classifies (an invalid CID, a batch
// too large) pass through, as does nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	var nl *replica.NotLeaderError
	switch {
	case errors.As(err, &nl) && nl.Leader.ID != "":
		msg := fmt.Sprintf("not the leader; the leader is %s", nl.Leader.ID)
		if len(nl.Leader.Meta) == 0 {
			// It published no addresses (yet): nothing to redirect to.
			return server.NewError(server.CodeUnavailable, msg+", whose addresses are not known yet; retry", err)
		}
		e := server.NewError(server.CodeRedirect, msg, err)
		e.Leader = nl.Leader.Meta
		return e
	case errors.Is(err, replica.ErrNotLeader):
		return server.NewError(server.CodeUnavailable, "no leader known: an election is under way; retry", err)
	case errors.Is(err, replica.ErrUnknownOutcome):
		return server.NewError(server.CodeUnavailable, "the leader was lost before the write was known to be committed: it may or may not have taken effect; retrying is safe", err)
	case errors.Is(err, replica.ErrTimeout), errors.Is(err, replica.ErrClosed), errors.Is(err, replica.ErrStopped):
		return server.NewError(server.CodeUnavailable, err.Error(), err)
	}
	return err
}
