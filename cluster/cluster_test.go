package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/replica"
	"github.com/cidstore/cidstore/server"
	"github.com/cidstore/cidstore/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestError(t *testing.T) {
	meta := map[string]string{"zmq": "tcp://10.0.0.2:5555", "http": "10.0.0.2:8000"}
	cases := []struct {
		name string
		in   error
		code server.Code
	}{
		{"leader known", &replica.NotLeaderError{Leader: replica.Server{ID: "n2", Meta: meta}}, server.CodeRedirect},
		{"leader without addresses", &replica.NotLeaderError{Leader: replica.Server{ID: "n2"}}, server.CodeUnavailable},
		{"election", &replica.NotLeaderError{}, server.CodeUnavailable},
		{"unknown outcome", fmt.Errorf("%w: lost", replica.ErrUnknownOutcome), server.CodeUnavailable},
		{"timeout", replica.ErrTimeout, server.CodeUnavailable},
		{"closed", replica.ErrClosed, server.CodeUnavailable},
		{"stopped", fmt.Errorf("%w: disk", replica.ErrStopped), server.CodeUnavailable},
	}
	for _, tc := range cases {
		err := Error(tc.in)
		var e *server.Error
		if !errors.As(err, &e) || e.Code != tc.code || !errors.Is(err, tc.in) {
			t.Errorf("%s: Error(%v) = %v, want code %d wrapping it", tc.name, tc.in, err, tc.code)
		}
		if tc.code == server.CodeRedirect && e.Leader["zmq"] != meta["zmq"] {
			t.Errorf("%s: redirect to %v", tc.name, e.Leader)
		}
	}
	bad := fmt.Errorf("%w: %w", replica.ErrBadCommand, store.ErrInvalidCID)
	if err := Error(bad); err != bad {
		t.Errorf("Error(%v) = %v, want it unchanged", bad, err)
	}
	if Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

// A Backend without its node answers 503 and leaves the store alone.
func TestBackendStarting(t *testing.T) {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := NewBackend(st, replica.Linearizable)
	k := cid.FromString("k")
	for _, err := range []error{
		func() error {
			_, err := b.ApplyPairs([]store.PairOp{{Kind: store.OpInsert, Key: k, Value: k}}, nil)
			return err
		}(),
		b.BeforeRead(context.Background()),
		b.Checkpoint(context.Background()),
	} {
		if !errors.Is(err, server.ErrUnavailable) {
			t.Fatalf("before SetNode: %v, want 503", err)
		}
	}
	if _, err := b.InsertTriples([]store.Triple{{S: k, P: k, O: k}}); !errors.Is(err, server.ErrUnavailable) {
		t.Fatalf("before SetNode: %v", err)
	}
	if st.Len() != 0 || b.TripleCount() != 0 || b.Node() != nil {
		t.Fatal("a refused write reached the store")
	}
}

// Client follows a follower's redirect to the leader, with the token, and
// stops after maxRedirects.
func TestClientRedirect(t *testing.T) {
	var got []string
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		var req AddRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ID != "n4" {
			server.WriteHTTPError(w, server.NewError(server.CodeBadRequest, fmt.Sprint(req, err), nil))
			return
		}
		writeJSON(w, map[string]string{"status": "ok"})
	}))
	defer leader.Close()
	redirectTo := func(addr string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e := server.NewError(server.CodeRedirect, "not the leader", nil)
			e.Leader = map[string]string{"http": addr}
			server.WriteHTTPError(w, e)
		}))
	}
	follower := redirectTo(strings.TrimPrefix(leader.URL, "http://"))
	defer follower.Close()
	c := &Client{Token: "tok"}
	ctx := context.Background()
	if err := c.AddVoter(ctx, follower.URL, AddRequest{ID: "n4", RaftAddr: "127.0.0.1:7004"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "POST /cluster/voters Bearer tok" {
		t.Fatalf("the leader saw %q", got)
	}
	// A redirect without a leader, and a redirect loop, end in an error.
	var ae *APIError
	none := redirectTo("")
	defer none.Close()
	if err := c.Remove(ctx, none.URL, "n1"); !errors.As(err, &ae) || ae.Status != http.StatusTemporaryRedirect {
		t.Fatalf("a redirect without a leader: %v", err)
	}
	hops := 0
	var loop *httptest.Server
	loop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops++
		e := server.NewError(server.CodeRedirect, "not the leader", nil)
		e.Leader = map[string]string{"http": loop.URL}
		server.WriteHTTPError(w, e)
	}))
	defer loop.Close()
	if err := c.Remove(ctx, loop.URL, "n1"); !errors.As(err, &ae) || ae.Status != http.StatusTemporaryRedirect || hops != maxRedirects+1 {
		t.Fatalf("a redirect loop: %v after %d requests", err, hops)
	}
}
