package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/cluster"
	"github.com/cidstore/cidstore/store"
)

// servedNode is a `cidstore serve -raft-id` child process.
type servedNode struct {
	id    string
	cmd   *exec.Cmd
	addrs map[string]string
	out   *bytes.Buffer
}

// startNode starts node id: with join "", it bootstraps a new cluster;
// with join "-", it neither bootstraps nor joins; else it joins through
// that HTTP address. Reads are local, so that the test can read every
// node's own store.
func startNode(t *testing.T, id, token, join string) *servedNode {
	t.Helper()
	args := []string{"-raft-id", id, "-raft-addr", "127.0.0.1:0", "-token-file", token, "-read", "local"}
	switch join {
	case "":
		args = append(args, "-bootstrap")
	case "-":
	default:
		args = append(args, "-join", join)
	}
	cmd, addrs, out := startServeChild(t, filepath.Join(t.TempDir(), id), args...)
	return &servedNode{id: id, cmd: cmd, addrs: addrs, out: out}
}

// waitCluster waits until the node at httpAddr sees a leader and want
// members, each of which reports its status and has applied everything
// the leader committed, and returns that status.
func waitCluster(t *testing.T, httpAddr string, want int) cluster.Status {
	t.Helper()
	return waitStatus(t, httpAddr, fmt.Sprintf("the cluster did not settle with %d members", want), func(st *cluster.Status) bool {
		return st.Leader != "" && len(st.Members) == want && caughtUp(*st)
	})
}

// waitStatus polls the status of the node at httpAddr until ok accepts
// it (ok may trim it), and returns it; after 30s it fails with failure.
func waitStatus(t *testing.T, httpAddr, failure string, ok func(*cluster.Status) bool) cluster.Status {
	t.Helper()
	c := &cluster.Client{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.Status(context.Background(), httpAddr)
		if err == nil && ok(&st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v, %v", failure, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func caughtUp(st cluster.Status) bool {
	for _, m := range st.Members {
		if m.Status == nil || m.Status.AppliedIndex < st.CommitIndex || m.Status.Leader != st.Leader {
			return false
		}
	}
	return true
}

// leaderNode returns the node that st names as leader.
func leaderNode(t *testing.T, nodes []*servedNode, st cluster.Status) *servedNode {
	t.Helper()
	for _, n := range nodes {
		if n.id == st.Leader {
			return n
		}
	}
	t.Fatalf("leader %q is none of the nodes", st.Leader)
	return nil
}

// TestServeClusterKillLeader starts three `cidstore serve` processes as a
// cluster, writes to it from four clients that follow redirects, SIGKILLs
// the leader in the middle, and checks that a new leader takes over and
// that every acknowledged write is on both surviving nodes. It then
// replaces the dead node through `cidstore cluster remove` and `add`.
func TestServeClusterKillLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n1 := startNode(t, "n1", tok, "")
	nodes := []*servedNode{n1, startNode(t, "n2", tok, n1.addrs["http"]), startNode(t, "n3", tok, n1.addrs["http"])}
	st := waitCluster(t, n1.addrs["http"], 3)
	leader := leaderNode(t, nodes, st)
	if st.Term == 0 || st.CommitIndex == 0 {
		t.Fatalf("GET /cluster: term %d, commit index %d", st.Term, st.CommitIndex)
	}

	// A write sent to a follower is redirected to the leader's address.
	for _, n := range nodes {
		if n == leader {
			continue
		}
		p, err := dialReq(n.addrs["zmq"])
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.call(map[string]any{"command": "insert", "key": "E(0,0,0,9)", "value": "E(0,0,0,9)"})
		p.nc.Close()
		if err != nil || toInt(r["error_code"]) != 307 || r["leader"] != leader.addrs["zmq"] {
			t.Fatalf("a write to follower %s: %v %v, want a redirect to %s", n.id, r, err, leader.addrs["zmq"])
		}
	}

	w := newClusterWriters(nodes)
	w.start(4)
	t.Cleanup(func() { w.stop() }) // when the test fails before it stops them
	w.waitAcks(t, 200)
	killed := time.Now()
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	leader.cmd.Wait()
	before := w.acks.Load()
	w.waitAcks(t, before+200)
	failover := w.firstAckAfter(killed)
	acked := w.stop()
	var alive []*servedNode
	for _, n := range nodes {
		if n != leader {
			alive = append(alive, n)
		}
	}
	// The dead node stays a member: two of three are a majority.
	st = waitCluster2(t, alive[0].addrs["http"], leader.id)
	if st.Leader == leader.id {
		t.Fatal("the killed node is still the leader")
	}
	for _, n := range alive {
		checkServed(t, n, acked)
	}
	t.Logf("leader %s killed; new leader %s; first write acknowledged %v after the kill; %d requests acknowledged (%d pairs, %d triples), all on both survivors",
		leader.id, st.Leader, failover.Round(time.Millisecond), len(acked.reqs), len(acked.pairs), len(acked.triples))
	if failover > 10*time.Second {
		t.Errorf("failover took %v", failover)
	}

	// Replace the dead node: remove it, add a fresh one, which catches up.
	clusterCLI := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(append([]string{"cluster", args[0], "-token-file", tok}, args[1:]...)...)
		if code != 0 {
			t.Fatalf("cidstore cluster %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	follower := alive[0]
	if follower.id == st.Leader {
		follower = alive[1]
	}
	if code, _, errOut := runCLI("cluster", "remove", "-http", follower.addrs["http"], leader.id); code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("cidstore cluster remove without the token: exit %d: %s", code, errOut)
	}
	clusterCLI("remove", "-http", follower.addrs["http"], leader.id) // through a follower: redirected
	n4 := startNode(t, "n4", tok, "-")
	clusterCLI("add", "-http", follower.addrs["http"], n4.addrs["http"])
	nodes = append(alive, n4)
	waitCluster(t, follower.addrs["http"], 3)
	out := clusterCLI("status", "-http", n4.addrs["http"])
	if strings.Contains(out, leader.id+" ") || !strings.Contains(out, "n4  ") {
		t.Fatalf("cluster status after the replacement:\n%s", out)
	}
	checkServed(t, n4, acked)

	for _, n := range nodes {
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if code := waitExit(t, n.cmd, n.out); code != 0 {
			t.Errorf("%s exited %d:\n%s", n.id, code, n.out.String())
		}
	}
}

// waitCluster2 waits until the node at httpAddr sees a leader other than
// dead and every member but dead has applied what it committed.
func waitCluster2(t *testing.T, httpAddr, dead string) cluster.Status {
	t.Helper()
	return waitStatus(t, httpAddr, "no new leader with caught-up followers", func(st *cluster.Status) bool {
		if st.Leader == "" || st.Leader == dead {
			return false
		}
		st.Members = slices.DeleteFunc(st.Members, func(m cluster.Member) bool { return m.ID == dead })
		return caughtUp(*st)
	})
}

// clusterWriters write to a served cluster from several clients, each
// following redirects and retrying elsewhere when a node fails.
type clusterWriters struct {
	nodes []*servedNode
	stopc atomic.Bool
	wg    sync.WaitGroup
	acks  atomic.Int64
	mu    sync.Mutex
	acked clusterAcked
	times []time.Time // when each acknowledgement arrived
}

// clusterAcked is what the cluster acknowledged.
type clusterAcked struct {
	acknowledged
	reqs []map[string]any
}

func newClusterWriters(nodes []*servedNode) *clusterWriters { return &clusterWriters{nodes: nodes} }

func (w *clusterWriters) start(clients int) {
	for k := range clients {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.client(k)
		}()
	}
}

// client writes loadRequest(k, b) for b = 1, 2, ..., each until the
// cluster acknowledges it or its outcome is unknown.
func (w *clusterWriters) client(k int) {
	target := w.nodes[k%len(w.nodes)].addrs["zmq"]
	var p *reqPeer
	defer func() {
		if p != nil {
			p.nc.Close()
		}
	}()
	for b := 1; !w.stopc.Load(); b++ {
		req, written := loadRequest(k+100, b)
		for tries := 0; !w.stopc.Load(); tries++ {
			if tries > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			if p == nil {
				var err error
				if p, err = dialReq(target); err != nil {
					p, target = nil, w.nodes[(k+tries)%len(w.nodes)].addrs["zmq"]
					continue
				}
			}
			r, err := p.call(req)
			if err != nil { // the node died: the outcome is unknown
				p.nc.Close()
				p, target = nil, w.nodes[(k+tries)%len(w.nodes)].addrs["zmq"]
				break
			}
			if r["status"] == "ok" {
				w.mu.Lock()
				w.acked.pairs = append(w.acked.pairs, written.pairs...)
				w.acked.triples = append(w.acked.triples, written.triples...)
				w.acked.reqs = append(w.acked.reqs, req)
				w.times = append(w.times, time.Now())
				w.mu.Unlock()
				w.acks.Add(1)
				break
			}
			if l, ok := r["leader"].(string); ok && toInt(r["error_code"]) == 307 {
				p.nc.Close()
				p, target = nil, l
			} else if toInt(r["error_code"]) != 503 {
				panic(fmt.Sprintf("client %d: %v", k, r))
			}
		}
	}
}

func (w *clusterWriters) waitAcks(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for w.acks.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes acknowledged, want %d", w.acks.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstAckAfter returns how long after t the first acknowledgement came.
func (w *clusterWriters) firstAckAfter(t time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.times {
		if at.After(t) {
			return at.Sub(t)
		}
	}
	return -1
}

func (w *clusterWriters) stop() clusterAcked {
	w.stopc.Store(true)
	w.wg.Wait()
	return w.acked
}

// checkServed checks, through node n's ZeroMQ endpoint, that n holds
// every acknowledged pair and triple.
func checkServed(t *testing.T, n *servedNode, acked clusterAcked) {
	t.Helper()
	p, err := dialReq(n.addrs["zmq"])
	if err != nil {
		t.Fatal(err)
	}
	defer p.nc.Close()
	values := map[cid.CID][]cid.CID{}
	for _, pr := range acked.pairs {
		values[pr.Key] = append(values[pr.Key], pr.Value)
	}
	for k, vs := range values {
		r, err := p.call(map[string]any{"command": "lookup", "key": k.EString()})
		if err != nil || r["status"] != "ok" {
			t.Fatalf("%s: lookup: %v %v", n.id, r, err)
		}
		have := map[string]bool{}
		for _, v := range r["results"].([]any) {
			have[v.(string)] = true
		}
		for _, v := range vs {
			if !have[v.EString()] {
				t.Fatalf("%s: acknowledged pair %s -> %s lost", n.id, k.EString(), v.EString())
			}
		}
	}
	bySubject := map[cid.CID][]store.Triple{}
	for _, tr := range acked.triples {
		bySubject[tr.S] = append(bySubject[tr.S], tr)
	}
	for s, ts := range bySubject {
		r, err := p.call(map[string]any{"command": "query", "s": s.EString(), "limit": 10000})
		if err != nil || r["status"] != "ok" {
			t.Fatalf("%s: query: %v %v", n.id, r, err)
		}
		have := map[string]bool{}
		for _, row := range r["results"].([]any) {
			c := row.([]any)
			have[c[0].(string)+c[1].(string)+c[2].(string)] = true
		}
		for _, tr := range ts {
			if !have[tr.S.EString()+tr.P.EString()+tr.O.EString()] {
				t.Fatalf("%s: acknowledged triple %v lost", n.id, tr)
			}
		}
	}
}

// toInt returns a msgpack integer, of whichever width the decoder chose,
// as an int64 (-1 for anything else).
func toInt(v any) int64 {
	switch r := reflect.ValueOf(v); {
	case r.CanInt():
		return r.Int()
	case r.CanUint():
		return int64(r.Uint())
	}
	return -1
}

func TestClusterUsage(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "-raft-id", "n1", "-memory"},
		{"serve", "-raft-id", "n1", "-bootstrap", "-join", "127.0.0.1:8000", "dir"},
		{"serve", "-raft-id", "n1", "-read", "stale", "dir"},
		{"serve", "-join", "127.0.0.1:8000", "dir"},
		{"serve", "-bootstrap", "-memory"},
		{"cluster"},
		{"cluster", "grow"},
		{"cluster", "status", "extra"},
		{"cluster", "add"},
		{"cluster", "remove", "-bogus", "n1"},
	} {
		if code, _, errOut := runCLI(args...); code != 2 {
			t.Errorf("cidstore %v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}
