package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test timeouts: short, so that elections take tens of milliseconds, but
// long enough that a race-instrumented cluster on two busy cores does not
// keep electing.
const (
	testHeartbeat = 200 * time.Millisecond
	testElection  = 200 * time.Millisecond
	testLease     = 100 * time.Millisecond
	waitLong      = 20 * time.Second // bound of every wait in these tests
)

// member is one node of an in-process test cluster, with the durable
// state a restart keeps: raft's log, stable store and snapshots live on
// after the node (and its in-memory store) is gone.
type member struct {
	id    string
	addr  raft.ServerAddress
	trans *raft.InmemTransport
	logs  *raft.InmemStore // log and stable store
	snaps raft.SnapshotStore
	st    *store.Store
	node  *Node
	meta  map[string]string
}

// cluster is an in-process cluster on raft's in-memory transport, whose
// links a test can cut.
type cluster struct {
	t       testing.TB
	mu      sync.Mutex
	members map[string]*member
	cut     map[[2]raft.ServerAddress]bool // links cut, both directions listed
	tune    func(*Config)
}

func newCluster(t testing.TB, n int, tune func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, members: map[string]*member{}, cut: map[[2]raft.ServerAddress]bool{}, tune: tune}
	for i := 1; i <= n; i++ {
		c.add(fmt.Sprintf("n%d", i))
	}
	t.Cleanup(c.close)
	first := c.member("n1")
	if err := first.node.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	c.waitLeader()
	for i := 2; i <= n; i++ {
		m := c.member(fmt.Sprintf("n%d", i))
		c.do(func(l *Node) error { return l.AddVoter(context.Background(), m.id, string(m.addr), m.meta) })
	}
	c.waitConverged()
	return c
}

// add creates member id with fresh durable state and starts it.
func (c *cluster) add(id string) *member {
	// (raft's InmemSnapshotStore races when a follower is sent the
	// snapshot being written, so snapshots go to files.)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.t.TempDir(), 2, newHCLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		c.t.Fatal(err)
	}
	m := &member{
		id:    id,
		addr:  raft.ServerAddress(id),
		logs:  raft.NewInmemStore(),
		snaps: snaps,
		meta:  map[string]string{"client": "client-" + id},
	}
	c.mu.Lock()
	c.members[id] = m
	c.mu.Unlock()
	c.start(m)
	return m
}

// start starts m's node with a new, empty in-memory store (a restart
// loses the store, as a crash of a node with an in-memory store does).
func (c *cluster) start(m *member) {
	c.t.Helper()
	st, err := store.Open("", store.Options{InMemory: true, Shards: 4})
	if err != nil {
		c.t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport(m.addr)
	cfg := Config{
		ID: m.id, Store: st, Transport: trans, LogStore: m.logs, StableStore: m.logs, SnapshotStore: m.snaps,
		Meta:             m.meta,
		HeartbeatTimeout: testHeartbeat, ElectionTimeout: testElection, LeaderLeaseTimeout: testLease,
		ApplyTimeout: 5 * time.Second,
		Logger:       testLogger(),
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	m.trans, m.st, m.node = trans, st, n
	c.mu.Unlock()
	c.connect()
}

// testLogger logs to stderr when CIDSTORE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CIDSTORE_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// connect wires every running member to every other, except cut links.
func (c *cluster) connect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.members {
		if a.node == nil {
			continue
		}
		for _, b := range c.members {
			if a == b || b.node == nil {
				continue
			}
			if c.cut[[2]raft.ServerAddress{a.addr, b.addr}] {
				a.trans.Disconnect(b.addr)
			} else {
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
}

// isolate cuts every link of member id; heal restores them all.
func (c *cluster) isolate(id string) {
	c.mu.Lock()
	for _, o := range c.members {
		if o.id != id {
			c.cut[[2]raft.ServerAddress{o.addr, raft.ServerAddress(id)}] = true
			c.cut[[2]raft.ServerAddress{raft.ServerAddress(id), o.addr}] = true
		}
	}
	c.mu.Unlock()
	c.connect()
}

func (c *cluster) heal() {
	c.mu.Lock()
	clear(c.cut)
	c.mu.Unlock()
	c.connect()
}

// stop closes member id's node and store, keeping its durable state.
func (c *cluster) stop(id string) {
	c.t.Helper()
	m := c.member(id)
	c.mu.Lock()
	n, st := m.node, m.st
	m.node = nil
	c.mu.Unlock()
	if err := n.Close(); err != nil {
		c.t.Fatalf("close %s: %v", id, err)
	}
	if err := st.Close(); err != nil {
		c.t.Fatal(err)
	}
	m.trans.Close()
}

// remove stops member id for good and forgets it.
func (c *cluster) remove(id string) {
	c.stop(id)
	c.mu.Lock()
	delete(c.members, id)
	c.mu.Unlock()
}

func (c *cluster) close() {
	for _, m := range c.running() {
		c.stop(m.id)
	}
}

func (c *cluster) member(id string) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[id]
	if m == nil {
		c.t.Fatalf("no member %s", id)
	}
	return m
}

// running returns the members whose node runs, ordered by ID.
func (c *cluster) running() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*member
	for _, m := range c.members {
		if m.node != nil {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *member) int { return strings.Compare(a.id, b.id) })
	return out
}

// waitFor polls cond until it holds, failing the test after waitLong.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// leader returns the running member that is leader, if exactly one is and
// every running member connected to it agrees.
func (c *cluster) leader() *member {
	var leader *member
	for _, m := range c.running() {
		if m.node.IsLeader() {
			if leader != nil {
				return nil
			}
			leader = m
		}
	}
	return leader
}

func (c *cluster) waitLeader() *member {
	c.t.Helper()
	var l *member
	waitFor(c.t, "a leader", func() bool { l = c.leader(); return l != nil })
	return l
}

// do runs fn on the leader, retrying while leadership moves.
func (c *cluster) do(fn func(*Node) error) {
	c.t.Helper()
	if !c.retry(fn) {
		c.t.FailNow()
	}
}

// retry runs fn on the leader until it succeeds, retrying while
// leadership moves. It reports an error other than that, or a timeout,
// with Errorf and returns false, so goroutines other than the test's may
// call it.
func (c *cluster) retry(fn func(*Node) error) bool {
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if l := c.leader(); l != nil {
			err := fn(l.node)
			switch {
			case err == nil:
				return true
			case !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnknownOutcome) && !errors.Is(err, ErrClosed):
				c.t.Errorf("on leader %s: %v", l.id, err)
				return false
			}
		}
		if time.Now().After(deadline) {
			c.t.Errorf("no leader accepted a request for %v", waitLong)
			return false
		}
		<-tick.C
	}
}

// waitConverged waits until every running member applied everything the
// leader did and holds the same store contents. The contents are compared
// until they agree: a leader elected meanwhile may still be applying what
// its predecessor committed (its applied index then lags its commit
// index), and its followers with it; a real divergence never settles and
// fails the test after waitLong.
func (c *cluster) waitConverged() {
	c.t.Helper()
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for diff := c.differ(); diff != ""; diff = c.differ() {
		if time.Now().After(deadline) {
			c.t.Fatalf("the replicas did not converge: %s", diff)
		}
		<-tick.C
	}
}

// differ says how the running members differ from the leader: in applied
// index or in contents; "" when they do not.
func (c *cluster) differ() string {
	l := c.leader()
	if l == nil {
		return "no leader"
	}
	want := l.node.Status().AppliedIndex
	for _, m := range c.running() {
		if got := m.node.Status().AppliedIndex; got < want {
			return fmt.Sprintf("%s applied %d, the leader %s %d", m.id, got, l.id, want)
		}
	}
	return c.same()
}

// same says how the running members' stores differ; "" when they do not.
func (c *cluster) same() string {
	ms := c.running()
	want := contents(ms[0].st)
	for _, m := range ms[1:] {
		if got := contents(m.st); !got.equal(want) {
			return fmt.Sprintf("%s holds %d keys and %d triples, %s %d and %d: the replicas differ",
				m.id, len(got.pairs), len(got.triples), ms[0].id, len(want.pairs), len(want.triples))
		}
	}
	return ""
}

// state is what a store holds: its pairs and its triples.
type state struct {
	pairs   map[cid.CID][]cid.CID
	triples map[store.Triple]bool
}

func contents(s *store.Store) state {
	st := state{pairs: map[cid.CID][]cid.CID{}, triples: map[store.Triple]bool{}}
	for k, vs := range s.All() {
		st.pairs[k] = vs
	}
	for t := range s.Query(cid.Zero, cid.Zero, cid.Zero) {
		st.triples[t] = true
	}
	return st
}

func (a state) equal(b state) bool {
	return maps.EqualFunc(a.pairs, b.pairs, slices.Equal) && maps.Equal(a.triples, b.triples)
}

func key(i uint64) cid.CID { return cid.FromWords(0xC1, 0, 0, i) }
func val(i uint64) cid.CID { return cid.FromWords(0xD1, 0, 0, i) }
