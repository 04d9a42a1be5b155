package server

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cidstore/cidstore/store"
	"github.com/go-zeromq/zmq4"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a Server on loopback ports chosen by the kernel, over an
// in-memory store unless dir is set.
type testServer struct {
	*Server
	st *store.Store
}

func startServer(t testing.TB, cfg Config, dir string) *testServer {
	t.Helper()
	st, err := store.Open(dir, store.Options{Shards: 8})
	if err != nil {
		t.Fatal(err)
	}
	return startServerWith(t, cfg, st, st)
}

func openMemStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open("", store.Options{Shards: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startServerWith serves b; st, if not nil, is closed after the server.
func startServerWith(t testing.TB, cfg Config, st *store.Store, b Backend) *testServer {
	t.Helper()
	if cfg.ZMQ == "" && cfg.Push == "" && cfg.Router == "" && cfg.Pub == "" {
		cfg.ZMQ, cfg.Push, cfg.Router, cfg.Pub = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	}
	if cfg.HTTP == "" {
		cfg.HTTP = "127.0.0.1:0"
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := New(cfg)
	if err := s.ListenHTTP(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(b); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, st: st}
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if ts.st != nil {
		ts.st.Close()
	}
}

// client is a zmq4 socket of a test.
type client struct {
	t testing.TB
	zmq4.Socket
}

func dial(t testing.TB, typ zmq4.SocketType, addr string) *client {
	t.Helper()
	var s zmq4.Socket
	ctx := context.Background()
	switch typ {
	case zmq4.Req:
		s = zmq4.NewReq(ctx)
	case zmq4.Dealer:
		s = zmq4.NewDealer(ctx)
	case zmq4.Push:
		s = zmq4.NewPush(ctx)
	case zmq4.Sub:
		s = zmq4.NewSub(ctx)
	default:
		t.Fatalf("no client of type %s", typ)
	}
	if err := s.Dial(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &client{t, s}
}

// call sends req (msgpack-encoded unless it is already []byte) and
// returns the decoded reply.
func (c *client) call(req any) map[string]any {
	c.t.Helper()
	b, ok := req.([]byte)
	if !ok {
		var err error
		if b, err = msgpack.Marshal(req); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.Send(zmq4.NewMsg(b)); err != nil {
		c.t.Fatal(err)
	}
	msg, err := c.Recv()
	if err != nil {
		c.t.Fatal(err)
	}
	body := msg.Frames[len(msg.Frames)-1]
	var m map[string]any
	if err := msgpack.Unmarshal(body, &m); err != nil {
		c.t.Fatalf("reply %q: %v", body, err)
	}
	return m
}

// ok fails unless m is a success reply.
func ok(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	if m["status"] != "ok" || m["version"] != "1.0" {
		t.Fatalf("reply %v, want status ok", m)
	}
	return m
}

// failed fails unless m is an error reply with code.
func failed(t testing.TB, m map[string]any, code int) {
	t.Helper()
	if m["status"] != "error" || m["version"] != "1.0" || toInt(m["error_code"]) != int64(code) {
		t.Fatalf("reply %v, want error %d", m, code)
	}
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int8:
		return int64(n)
	case int16:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	case uint64:
		return int64(n)
	}
	return -1 << 63
}
