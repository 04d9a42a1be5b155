package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cidstore/cidstore/store"
	"github.com/go-zeromq/zmq4"
)

// follower is a Backend as a replica that is not the leader serves it:
// writes and (while strict) reads are redirected to the leader.
type follower struct {
	*store.Store
	strict atomic.Bool
}

var leaderAddrs = map[string]string{"zmq": "tcp://10.0.0.1:5555", "router": "tcp://10.0.0.1:5558", "http": "10.0.0.1:8000"}

func redirect() error {
	return &Error{Code: CodeRedirect, Msg: "not the leader; the leader is n2", Leader: leaderAddrs}
}

func (f *follower) ApplyPairs([]store.PairOp, []bool) (int, error) { return 0, redirect() }
func (f *follower) InsertTriples([]store.Triple) (int, error)      { return 0, redirect() }
func (f *follower) DeleteTriples([]store.Triple) (int, error)      { return 0, redirect() }
func (f *follower) BeforeRead(context.Context) error {
	if f.strict.Load() {
		return redirect()
	}
	return nil
}

// TestRedirect: a Backend's redirect reaches each protocol with the
// leader's address for that protocol; the read barrier gates reads, not
// ping or metrics.
func TestRedirect(t *testing.T) {
	f := &follower{Store: openMemStore(t)}
	ts := startServerWith(t, Config{Token: "tok"}, nil, f)
	for _, ep := range []struct {
		name string
		typ  zmq4.SocketType
	}{{"zmq", zmq4.Req}, {"router", zmq4.Dealer}} {
		c := dial(t, ep.typ, ts.Addr(ep.name))
		for _, req := range []m{
			{"command": "insert", "key": "E(1,1)", "value": "E(1,2)"},
			{"command": "batch_delete", "triples": []any{[]any{"E(1,1)", "E(1,2)", "E(1,3)"}}},
		} {
			r := c.call(req)
			failed(t, r, 307)
			if r["leader"] != leaderAddrs[ep.name] || !strings.Contains(r["error_msg"].(string), "n2") {
				t.Fatalf("%s: redirect %v, want the leader at %s", ep.name, r, leaderAddrs[ep.name])
			}
		}
		ok(t, c.call(m{"command": "lookup", "key": "E(1,1)"}))
		f.strict.Store(true)
		failed(t, c.call(m{"command": "lookup", "key": "E(1,1)"}), 307)
		failed(t, c.call(m{"command": "query", "s": "E(1,1)"}), 307)
		ok(t, c.call(m{"command": "ping"}))
		ok(t, c.call(m{"command": "metrics"}))
		f.strict.Store(false)
	}
	if st := f.Stats(); st.Keys != 0 {
		t.Fatal("a redirected write reached the store")
	}
	if !errors.Is(redirect(), ErrRedirect) {
		t.Fatal("a redirect is not ErrRedirect")
	}
}

// TestRoute: an added route is served, behind the token when asked.
func TestRoute(t *testing.T) {
	s := New(Config{HTTP: "127.0.0.1:0", ZMQ: "tcp://127.0.0.1:0", Token: "tok"})
	s.Route("GET /extra", false, func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("open")) })
	s.Route("POST /extra", true, func(w http.ResponseWriter, _ *http.Request) { WriteHTTPError(w, redirect()) })
	if err := s.ListenHTTP(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr("http")
	if code, body, _ := httpDo(t, "GET", base+"/extra", "", ""); code != 200 || body != "open" {
		t.Fatalf("GET /extra: %d %q", code, body)
	}
	if code, _, _ := httpDo(t, "POST", base+"/extra", "", ""); code != 401 {
		t.Fatalf("POST /extra without the token: %d", code)
	}
	code, body, _ := httpDo(t, "POST", base+"/extra", "tok", "")
	if code != 307 || !strings.Contains(body, `"leader": "10.0.0.1:8000"`) {
		t.Fatalf("POST /extra: %d %s", code, body)
	}
}
