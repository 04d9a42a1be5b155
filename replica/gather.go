package replica

import (
	"errors"
	"sync"
	"time"

	"github.com/cidstore/cidstore/store"
)

// Small pair commands that arrive together on the leader are gathered
// into one log entry, as etcd batches proposals: each entry costs every
// node a future, a message, a log record and a state-machine call
// whatever its size, so 64 concurrent single inserts as 64 entries cost
// 20 times the CPU per pair of one store, and as a few entries much less.
//
// A gathered entry is the commands' operations in the order they were
// gathered, one pair command; the state machine applies it as one atomic
// batch in order, so each command stays atomic and applied in order
// (commands in flight together are concurrent: any order is theirs).
// Every command is validated before it is gathered, so the store cannot
// refuse one of them and fail the others. All commands of an entry get its
// outcome: committed and applied, or one of Apply's errors, which say the
// same of each (not logged, or unknown).
//
// Up to gatherInflight entries are in raft at once, so gathering never
// holds raft's own pipeline back: a command waits only while that many
// entries are already on their way, and then goes into the next one.
const (
	gatherMaxOps   = 64 // a larger command goes to raft on its own
	gatherEntryOps = 4096
	gatherInflight = 4
)

// gatherer queues small pair commands for the next gathered entry.
type gatherer struct {
	mu       sync.Mutex
	queue    []*proposal
	inflight int // entries in raft, or callers about to send one
}

// proposal is one command waiting in a gathered entry. done receives at
// most one errYourTurn, while the proposal is queued, and then its
// outcome.
type proposal struct {
	ops  []store.PairOp
	done chan error
	turn bool   // errYourTurn was sent
	res  Result // its operations' outcome, set before done receives it
}

// errYourTurn hands a free entry slot to a queued proposal's caller,
// which then sends the next entry.
var errYourTurn = errors.New("replica: send the next gathered entry")

// applyGathered runs the pair command c, validated, through a gathered
// entry, waiting at most d to get the entry into the log; it returns the
// entry's outcome for its own operations.
func (n *Node) applyGathered(c Command, d time.Duration) (Result, error) {
	g := &n.gather
	p := &proposal{ops: c.pairs, done: make(chan error, 2)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	turn := g.inflight < gatherInflight
	if turn {
		g.inflight++
	}
	g.mu.Unlock()
	for {
		if turn {
			n.sendEntry(d)
		}
		err := <-p.done
		if err != errYourTurn {
			return p.res, err
		}
		turn = true
	}
}

// sendEntry, holding one of the gatherInflight slots, sends the queued
// proposals as one entry, delivers its outcome to each, and hands the
// slot to a queued proposal or frees it.
func (n *Node) sendEntry(d time.Duration) {
	g := &n.gather
	g.mu.Lock()
	group := g.take()
	g.mu.Unlock()
	if len(group) > 0 {
		ops, err := n.applyEntry(group, d)
		off := 0
		for _, q := range group {
			if end := off + len(q.ops); len(ops) >= end {
				flags := ops[off:end:end]
				q.res = Result{Changed: countTrue(flags), ChangedOps: flags}
			}
			off += len(q.ops)
			q.done <- err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, q := range g.queue {
		if !q.turn {
			q.turn = true
			q.done <- errYourTurn
			return
		}
	}
	g.inflight--
}

// take removes from the queue the proposals of the next entry: all of
// them, up to gatherEntryOps operations (at least one proposal). g.mu is
// held.
func (g *gatherer) take() []*proposal {
	ops, i := 0, 0
	for ; i < len(g.queue); i++ {
		if i > 0 && ops+len(g.queue[i].ops) > gatherEntryOps {
			break
		}
		ops += len(g.queue[i].ops)
	}
	group := g.queue[:i:i]
	g.queue = g.queue[i:]
	if len(g.queue) == 0 {
		g.queue = nil // let the old array go
	}
	return group
}

// applyEntry logs the proposals' operations as one pair command and
// waits for its outcome.
func (n *Node) applyEntry(group []*proposal, d time.Duration) ([]bool, error) {
	c := Command{kind: kindPairs, pairs: group[0].ops}
	if len(group) > 1 {
		total := 0
		for _, p := range group {
			total += len(p.ops)
		}
		ops := make([]store.PairOp, 0, total)
		for _, p := range group {
			ops = append(ops, p.ops...)
		}
		c.pairs = ops
	}
	data, err := c.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := n.raft.Apply(data, d)
	if err := n.raftErr(f.Error()); err != nil {
		return nil, err
	}
	r, _ := f.Response().(result)
	return r.ops, r.err
}
