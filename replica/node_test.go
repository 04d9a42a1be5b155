package replica

import (
	"context"
	"errors"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/cidstore/cidstore/store"
)

// openSolo opens a one-node cluster on raft's in-memory implementations.
func openSolo(t *testing.T, st *store.Store) *Node {
	t.Helper()
	logs := raft.NewInmemStore()
	_, trans := raft.NewInmemTransport("")
	n, err := Open(Config{ID: "solo", Store: st, Transport: trans, LogStore: logs, StableStore: logs,
		SnapshotStore:    raft.NewDiscardSnapshotStore(),
		HeartbeatTimeout: testHeartbeat, ElectionTimeout: testElection, LeaderLeaseTimeout: testLease})
	must(t, err)
	must(t, n.Bootstrap())
	must(t, n.Bootstrap()) // a no-op on a node with state
	t.Cleanup(func() { n.Close(); trans.Close() })
	return n
}

func memStore(t *testing.T) *store.Store {
	st, err := store.Open("", store.Options{InMemory: true})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

func TestNodeLifecycle(t *testing.T) {
	n := openSolo(t, memStore(t))
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	l, err := n.WaitLeader(ctx)
	must(t, err)
	if l.ID != "solo" {
		t.Fatalf("leader %+v", l)
	}
	waitFor(t, "leadership", n.IsLeader)
	must(t, n.Insert(key(1), val(1)))
	if s := n.Status(); s.State != "Leader" || s.AppliedIndex == 0 || len(s.Servers) != 1 || s.Stopped != "" {
		t.Fatalf("status %+v", s)
	}

	must(t, n.Close())
	if err := n.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if err := n.Insert(key(1), val(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Insert after Close = %v", err)
	}
	if _, err := n.Read(ctx, Local); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
	if _, err := n.WaitLeader(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitLeader after Close = %v", err)
	}
	if err := n.AddVoter(ctx, "x", "y", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddVoter after Close = %v", err)
	}
	if n.Status().State != "Shutdown" {
		t.Fatalf("state after Close: %s", n.Status().State)
	}
}

func TestReadModes(t *testing.T) {
	for _, m := range []ReadMode{Linearizable, Local} {
		got, err := ParseReadMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseReadMode(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseReadMode("stale"); err == nil {
		t.Fatal("ParseReadMode accepted an unknown mode")
	}
	n := openSolo(t, memStore(t))
	waitFor(t, "leadership", n.IsLeader)
	if _, err := n.Read(context.Background(), ReadMode(7)); err == nil {
		t.Fatal("Read accepted an unknown mode")
	}
}

// A node without raft state refuses a store that holds data.
func TestNewNodeNeedsEmptyStore(t *testing.T) {
	st := memStore(t)
	must(t, st.Insert(key(1), val(1)))
	logs := raft.NewInmemStore()
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	_, err := Open(Config{ID: "x", Store: st, Transport: trans, LogStore: logs, StableStore: logs,
		SnapshotStore: raft.NewDiscardSnapshotStore()})
	if !errors.Is(err, ErrStoreNotEmpty) {
		t.Fatalf("Open with a non-empty store = %v", err)
	}
}

// A store that fails under the node (here: closed) stops the state
// machine: the node answers ErrStopped, shuts raft down, and says why.
func TestStoppedStateMachine(t *testing.T) {
	st, err := store.Open("", store.Options{InMemory: true})
	must(t, err)
	n := openSolo(t, st)
	waitFor(t, "leadership", n.IsLeader)
	must(t, n.Insert(key(1), val(1)))
	must(t, st.Close())
	if err := n.Insert(key(2), val(2)); !errors.Is(err, ErrStopped) || !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Insert into a closed store = %v", err)
	}
	waitFor(t, "raft to shut down", func() bool { return n.Status().State == "Shutdown" })
	if _, err := n.Read(context.Background(), Local); !errors.Is(err, ErrStopped) {
		t.Fatalf("Read after the stop = %v", err)
	}
	if s := n.Status(); s.Stopped == "" {
		t.Fatal("Status does not say why the state machine stopped")
	}
}

// Open closes what it opened when a later step fails: here the raft
// address is taken, after raft.db was opened.
func TestOpenFailureClosesWhatItOpened(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{ID: "a", Addr: "127.0.0.1:0", Dir: dir + "/a", Store: memStore(t)})
	must(t, err)
	defer a.Close()
	if _, err := Open(Config{ID: "b", Addr: a.Addr(), Dir: dir + "/b", Store: memStore(t)}); err == nil {
		t.Fatal("Open on a taken address succeeded")
	}
	// raft.db of b was closed: opening it again does not wait for its lock.
	b, err := Open(Config{ID: "b", Addr: "127.0.0.1:0", Dir: dir + "/b", Store: memStore(t)})
	must(t, err)
	must(t, b.Close())
	if _, err := Open(Config{ID: "c", Addr: "0.0.0.0:0", Dir: dir + "/c", Store: memStore(t)}); err == nil {
		t.Fatal("Open on an unspecified address succeeded")
	}
}
