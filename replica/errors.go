package replica

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by every method of a Node after Close, and by
	// writes that were in flight when it closed.
	ErrClosed = errors.New("replica: node is closed")

	// ErrNotLeader is returned (wrapped in a *NotLeaderError that names the
	// leader, when one is known) by writes and linearizable reads on a node
	// that is not the leader. The command was not logged: it has no effect.
	ErrNotLeader = errors.New("replica: not the leader")

	// ErrUnknownOutcome is returned by a write whose command was logged but
	// whose leader lost its leadership before the command was known to be
	// committed. A later leader may still commit it: the write may or may
	// not take effect. Retrying is safe, since every command is an
	// idempotent assignment, but a delete and an insert of the same pair
	// retried in another order land in that order.
	ErrUnknownOutcome = errors.New("replica: outcome unknown: leadership was lost after the command was logged")

	// ErrTimeout is returned by a write that could not even be queued for
	// the log before its deadline: it has no effect.
	ErrTimeout = errors.New("replica: timed out before the command was logged")

	// ErrBadCommand is returned (wrapped, with the reason and the byte
	// offset) by DecodeCommand for malformed input, and by the write
	// methods for a command that is not valid, such as one naming the
	// reserved zero CID.
	ErrBadCommand = errors.New("replica: bad command")

	// ErrUnsupported is returned (wrapped) by DecodeCommand for a command
	// of a newer format version or of a kind this build cannot apply. A
	// node that meets one in its log stops applying (see Node.Status): it
	// must be upgraded before it can follow the cluster again.
	ErrUnsupported = errors.New("replica: unsupported command")

	// ErrStoreNotEmpty is returned by Open when a node without raft state
	// (it never bootstrapped or joined) is given a store that holds data:
	// the cluster's log would be applied on top of pairs it knows nothing
	// of, and the replicas would differ.
	ErrStoreNotEmpty = errors.New("replica: a new node needs an empty store")

	// ErrStopped is returned (wrapped, with the cause) by every read and
	// write of a node whose state machine stopped applying the log after a
	// failure that replicas may not share, such as a store that turned
	// read-only after a disk error. Its store no longer follows the log.
	ErrStopped = errors.New("replica: the state machine stopped")

	// ErrBadSnapshot is returned (wrapped) when a snapshot stream does not
	// start with a valid replica snapshot header.
	ErrBadSnapshot = errors.New("replica: bad snapshot")
)

// NotLeaderError is the error a follower or candidate returns for work
// only the leader does. Leader is the leader this node knows of; its ID is
// empty when none is known (during an election). A server redirects the
// client to Leader.Meta's address, or forwards the request there.
type NotLeaderError struct {
	Leader Server
}

func (e *NotLeaderError) Error() string {
	if e.Leader.ID == "" {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return fmt.Sprintf("%s (leader %s at %s)", ErrNotLeader, e.Leader.ID, e.Leader.Addr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }
