package replica

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

func TestReplication(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.waitLeader()
	ctx := context.Background()
	n := l.node
	must(t, n.Insert(key(1), val(1)))
	must(t, n.Insert(key(1), val(2)))
	must(t, n.Insert(key(2), val(1)))
	must(t, n.Delete(key(1), val(1)))
	must(t, n.DeleteKey(key(2)))
	batch := make([]store.Pair, 1000)
	for i := range batch {
		batch[i] = store.Pair{Key: key(uint64(10 + i%100)), Value: val(uint64(i))}
	}
	must(t, n.InsertBatch(batch))
	must(t, n.InsertBatch(nil))
	if err := n.Insert(cid.Zero, val(1)); !errors.Is(err, store.ErrInvalidCID) || !errors.Is(err, ErrBadCommand) {
		t.Fatalf("Insert of the zero CID = %v", err)
	}

	st, err := n.Read(ctx, Linearizable)
	must(t, err)
	if got := st.Get(key(1)); !slices.Equal(got, []cid.CID{val(2)}) {
		t.Fatalf("leader Get(key 1) = %v", got)
	}
	if st.Len() != 101 {
		t.Fatalf("leader holds %d keys, want 101", st.Len())
	}
	c.waitConverged()

	// Followers: writes and linearizable reads are refused with the
	// leader's name and metadata; local reads work.
	for _, m := range c.running() {
		if m == l {
			continue
		}
		err := m.node.Insert(key(3), val(3))
		var nl *NotLeaderError
		if !errors.As(err, &nl) || nl.Leader.ID != l.id || nl.Leader.Meta["client"] != "client-"+l.id {
			t.Fatalf("Insert on follower %s = %v, want a NotLeaderError naming %s with its metadata", m.id, err, l.id)
		}
		if _, err := m.node.Read(ctx, Linearizable); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("linearizable read on follower %s = %v", m.id, err)
		}
		ls, err := m.node.Read(ctx, Local)
		must(t, err)
		if got := ls.Get(key(1)); !slices.Equal(got, []cid.CID{val(2)}) {
			t.Fatalf("follower %s Get(key 1) = %v", m.id, got)
		}
		st := m.node.Status()
		if st.Leader.ID != l.id || st.State != "Follower" || st.Term == 0 || st.CommitIndex < st.AppliedIndex {
			t.Fatalf("follower status %+v", st)
		}
	}
	st2 := n.Status()
	if len(st2.Servers) != 3 || st2.State != "Leader" || st2.LastContact != 0 {
		t.Fatalf("leader status %+v", st2)
	}
	for _, s := range st2.Servers {
		if !s.Voter || s.Meta["client"] != "client-"+s.ID {
			t.Fatalf("server %+v", s)
		}
	}
}

func TestLeaderLossAndReelection(t *testing.T) {
	c := newCluster(t, 3, nil)
	for round := 0; round < 3; round++ {
		old := c.waitLeader()
		c.do(func(n *Node) error { return n.Insert(key(uint64(round)), val(1)) })
		c.stop(old.id)
		next := c.waitLeader()
		if next == old {
			t.Fatal("a stopped node is leader")
		}
		// Every acknowledged write is there on the new leader.
		c.do(func(n *Node) error {
			st, err := n.Read(context.Background(), Linearizable)
			if err != nil {
				return err
			}
			for r := 0; r <= round; r++ {
				if !st.Contains(key(uint64(r)), val(1)) {
					t.Fatalf("round %d: write of round %d lost", round, r)
				}
			}
			return nil
		})
		c.do(func(n *Node) error { return n.Insert(key(uint64(round)), val(2)) })
		c.start(old) // back with an empty store: it catches up from the log
		c.waitConverged()
	}
}

// A leader cut off from the majority can neither commit nor serve a
// linearizable read; the majority elects a new leader and goes on; after
// the partition heals the old leader drops what it logged alone.
func TestPartitionedMinority(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.waitLeader()
	c.do(func(n *Node) error { return n.Insert(key(1), val(1)) })
	c.isolate(old.id)

	err := old.node.Insert(key(2), val(2)) // logged by the old leader alone
	if err == nil || !(errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrNotLeader)) {
		t.Fatalf("write on the isolated leader = %v", err)
	}
	if _, err := old.node.Read(context.Background(), Linearizable); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("linearizable read on the isolated leader = %v", err)
	}
	var next *member
	waitFor(t, "a leader in the majority", func() bool {
		next = c.leader()
		return next != nil && next != old
	})
	must(t, next.node.Insert(key(3), val(3)))

	c.heal()
	c.waitConverged()
	st := old.st
	if !st.Contains(key(1), val(1)) || !st.Contains(key(3), val(3)) {
		t.Fatal("the old leader misses committed writes")
	}
	if st.Count(key(2)) != 0 {
		t.Fatal("a write only the isolated leader logged survived")
	}
}

// A follower that missed 100k commands while cut off catches up from a
// snapshot: the leader compacted its log long before.
func TestSnapshotInstall(t *testing.T) {
	const commands = 100_000
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 4096
		cfg.SnapshotInterval = 50 * time.Millisecond
		cfg.TrailingLogs = 1024
		cfg.MaxAppendEntries = 1024
	})
	l := c.waitLeader()
	var lag *member // a follower
	for _, m := range c.running() {
		if m != l {
			lag = m
			break
		}
	}
	before := lag.node.Status().AppliedIndex
	c.isolate(lag.id)
	t0 := time.Now()
	c.applyMany(commands)
	t.Logf("applied %d commands in %v", commands, time.Since(t0))
	waitFor(t, "the leader to snapshot and compact", func() bool {
		l := c.leader()
		return l != nil && l.node.Status().SnapshotIndex > before+commands/2
	})
	restores := lag.node.fsm.restores.Load()
	t.Logf("snapshot taken after %v", time.Since(t0))
	c.heal()
	c.waitConverged()
	t.Logf("converged after %v", time.Since(t0))
	if got := lag.node.fsm.restores.Load(); got <= restores {
		t.Fatal("the lagging follower caught up without a snapshot")
	}
	if lag.st.Pairs() < commands {
		t.Fatalf("the follower holds %d pairs, want at least %d", lag.st.Pairs(), commands)
	}
}

// applyMany applies count single-insert commands, keeping up to 4096 in
// flight on the leader's raft; those that fail (leadership moved) are
// retried one by one on the leader of the moment.
func (c *cluster) applyMany(count int) {
	c.t.Helper()
	type pending struct {
		f raft.ApplyFuture
		i int
	}
	cmd := func(i int) Command { return Insert(key(uint64(1000+i%5000)), val(uint64(i))) }
	inflight := make(chan pending, 4096)
	var failed []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range inflight {
			if err := p.f.Error(); err != nil {
				failed = append(failed, p.i)
			} else if r := p.f.Response().(result); r.err != nil {
				c.t.Errorf("command %d: %v", p.i, r.err)
			}
		}
	}()
	l := c.waitLeader()
	for i := range count {
		data, err := cmd(i).MarshalBinary()
		if err != nil {
			c.t.Fatal(err)
		}
		inflight <- pending{l.node.raft.Apply(data, 0), i}
	}
	close(inflight)
	<-done
	for _, i := range failed {
		if !c.retry(func(n *Node) error { _, err := n.Apply(context.Background(), cmd(i)); return err }) {
			return
		}
	}
}

func TestRemoveAndAddNode(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.waitLeader()
	c.do(func(n *Node) error { return n.Insert(key(1), val(1)) })
	var gone *member
	for _, m := range c.running() {
		if m != l {
			gone = m
			break
		}
	}
	c.do(func(n *Node) error { return n.RemoveServer(context.Background(), gone.id) })
	c.remove(gone.id)
	c.do(func(n *Node) error { return n.Insert(key(2), val(2)) })
	servers, err := c.waitLeader().node.Servers()
	must(t, err)
	if len(servers) != 2 {
		t.Fatalf("after the removal the cluster has %d servers", len(servers))
	}

	fresh := c.add("n4")
	c.do(func(n *Node) error {
		return n.AddVoter(context.Background(), fresh.id, string(fresh.addr), fresh.meta)
	})
	c.do(func(n *Node) error { return n.Insert(key(3), val(3)) })
	c.waitConverged()
	if !fresh.st.Contains(key(1), val(1)) || !fresh.st.Contains(key(3), val(3)) {
		t.Fatal("the new node did not catch up")
	}
	st := c.waitLeader().node.Status()
	if len(st.Servers) != 3 {
		t.Fatalf("after the addition the cluster has %d servers", len(st.Servers))
	}
	for _, s := range st.Servers {
		if s.ID == gone.id {
			t.Fatal("the removed node is still a member")
		}
		if s.Meta["client"] != "client-"+s.ID {
			t.Fatalf("server %s has metadata %v", s.ID, s.Meta)
		}
	}
	// The removed node's metadata went with it.
	if m := c.waitLeader().node.fsm.metaOf(gone.id); m != nil {
		t.Fatalf("removed node's metadata %v is still replicated", m)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
