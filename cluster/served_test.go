package cluster

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/replica"
	"github.com/cidstore/cidstore/server"
	"github.com/cidstore/cidstore/store"
)

// served is one replica behind a server, as `cidstore serve -raft-id`
// runs it, with its Executor: the command layer every protocol adapter
// goes through.
type served struct {
	b    *Backend
	srv  *server.Server
	node *replica.Node
	exec *server.Executor
}

const testToken = "s3cret"

// serveNode starts a replica with reads in mode and its HTTP control
// plane on loopback; the test's cleanup stops them.
func serveNode(t *testing.T, id string, mode replica.ReadMode) *served {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &served{b: NewBackend(st, mode)}
	s.srv = server.New(server.Config{HTTP: "127.0.0.1:0", Token: testToken})
	Register(s.srv, s.b, &Client{Token: testToken})
	if err := s.srv.ListenHTTP(); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.Start(s.b); err != nil {
		t.Fatal(err)
	}
	// A ZeroMQ address is published as `cidstore serve` publishes its
	// endpoints, for the redirects to name.
	meta := map[string]string{"http": s.srv.Addr("http"), "zmq": "tcp://zmq-of-" + id}
	s.node, err = replica.Open(replica.Config{ID: id, Addr: "127.0.0.1:0", Dir: t.TempDir(), Store: st, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	s.b.SetNode(s.node)
	s.exec = server.NewExecutor(s.b, server.Limits{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := errors.Join(s.srv.Shutdown(ctx), s.node.Close(), st.Close()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// waitUntil polls cond every 10 ms for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestServedCluster runs three replicas behind servers, joined through
// the authenticated control plane: writes to a follower and linearizable
// reads on a follower are redirected by the command layer, local reads are
// served anywhere, and GET /cluster reports the leader, the term, the
// commit index and every member's applied index.
func TestServedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	n1 := serveNode(t, "n1", replica.Linearizable)
	n2 := serveNode(t, "n2", replica.Linearizable)
	n3 := serveNode(t, "n3", replica.Local)
	if err := n1.node.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitUntil(t, "n1 to lead", n1.node.IsLeader)

	// Membership needs the token, and a follower redirects it.
	nobody := &Client{}
	var ae *APIError
	if err := nobody.AddVoter(ctx, n1.srv.Addr("http"), AddRequest{ID: "n2", RaftAddr: n2.node.Addr()}); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("adding a voter without the token: %v, want 401", err)
	}
	admin := &Client{Token: testToken}
	for _, s := range []*served{n2, n3} {
		req := AddRequest{ID: s.node.ID(), RaftAddr: s.node.Addr(), Addrs: s.node.Meta()}
		if err := admin.AddVoter(ctx, n1.srv.Addr("http"), req); err != nil {
			t.Fatal(err)
		}
	}
	all := []*served{n1, n2, n3}
	waitUntil(t, "every node to know all three", func() bool {
		for _, s := range all {
			if len(s.node.Status().Servers) != 3 {
				return false
			}
		}
		return true
	})

	k, v := cid.FromString("k"), cid.FromString("v")
	insert := &server.Command{Op: server.OpInsert, Pairs: []store.PairOp{{Kind: store.OpInsert, Key: k, Value: v}}}
	lookup := &server.Command{Op: server.OpLookup, Key: k}
	var r server.Result
	for _, s := range []*served{n2, n3} {
		err := s.exec.Execute(insert, &r)
		var e *server.Error
		if !errors.As(err, &e) || e.Code != server.CodeRedirect || e.Leader["zmq"] != "tcp://zmq-of-n1" || e.Leader["http"] != n1.srv.Addr("http") {
			t.Fatalf("a write to follower %s: %v (leader %v), want a redirect to n1", s.node.ID(), err, e)
		}
	}
	if err := n1.exec.Execute(insert, &r); err != nil {
		t.Fatal(err)
	}
	if err := n1.exec.Execute(lookup, &r); err != nil || len(r.Values) != 1 || r.Values[0] != v {
		t.Fatalf("a linearizable read on the leader: %v %v", r.Values, err)
	}
	if err := n2.exec.Execute(lookup, &r); !errors.Is(err, server.ErrRedirect) {
		t.Fatalf("a linearizable read on a follower: %v, want a redirect", err)
	}
	waitUntil(t, "the local reader to apply the write", func() bool {
		return n3.exec.Execute(lookup, &r) == nil && len(r.Values) == 1
	})

	// GET /cluster, asked of a follower.
	var st Status
	waitUntil(t, "GET /cluster to show every member caught up", func() bool {
		var err error
		if st, err = admin.Status(ctx, n3.srv.Addr("http")); err != nil || len(st.Members) != 3 {
			return false
		}
		for _, m := range st.Members {
			if m.Status == nil || m.Status.AppliedIndex < st.CommitIndex {
				return false
			}
		}
		return true
	})
	leaderStatus := n1.node.Status()
	if st.Leader != "n1" || st.Term == 0 || st.Term != leaderStatus.Term || st.CommitIndex == 0 || st.CommitIndex > leaderStatus.CommitIndex {
		t.Fatalf("GET /cluster: leader %q term %d commit %d; the leader says term %d commit %d",
			st.Leader, st.Term, st.CommitIndex, leaderStatus.Term, leaderStatus.CommitIndex)
	}
	for _, m := range st.Members {
		if !m.Voter || m.Status.ID != m.ID || m.Addrs["http"] == "" || m.Status.Leader != "n1" {
			t.Fatalf("GET /cluster: member %+v, status %+v", m, *m.Status)
		}
	}

	// Removing a member: through a follower, which redirects to the leader.
	if err := nobody.Remove(ctx, n2.srv.Addr("http"), "n3"); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("removing a member without the token: %v, want 401", err)
	}
	if err := admin.Remove(ctx, n2.srv.Addr("http"), "n3"); err != nil {
		t.Fatal(err)
	}
	if servers, err := n1.node.Servers(); err != nil || len(servers) != 2 {
		t.Fatalf("after removing n3: %v %v", servers, err)
	}
}
