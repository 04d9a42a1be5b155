package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vmihailenco/msgpack/v5"
)

func testCounter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func pack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unpackMap(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var r map[string]any
	if err := msgpack.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return r
}

// rawPeer is a ZMTP connection a test drives by hand: zmq4's Conn over a
// plain TCP connection, so that it can also write any bytes it likes.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	zc *zmq4.Conn
}

func dialRaw(t testing.TB, addr string, typ zmq4.SocketType) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	zc, err := zmq4.Open(nc, null.Security(), typ, nil, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{t, nc, zc}
}

// frame encodes one ZMTP frame with flags (more is added unless last).
func frame(body []byte, last bool) []byte {
	var flags byte
	if !last {
		flags |= flagMore
	}
	if len(body) > 255 {
		b := make([]byte, 9, 9+len(body))
		b[0] = flags | flagLong
		binary.BigEndian.PutUint64(b[1:], uint64(len(body)))
		return append(b, body...)
	}
	return append([]byte{flags, byte(len(body))}, body...)
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// request sends body as a REQ client does: after an empty delimiter.
func (p *rawPeer) request(body []byte) {
	p.write(append(frame(nil, false), frame(body, true)...))
}

func (p *rawPeer) reply() map[string]any {
	p.t.Helper()
	msg, err := p.zc.RecvMsg()
	if err != nil {
		p.t.Fatal(err)
	}
	if len(msg.Frames) != 2 || len(msg.Frames[0]) != 0 {
		p.t.Fatalf("reply frames %q, want a delimiter and a body", msg.Frames)
	}
	return unpackMap(p.t, msg.Frames[1])
}

func TestDealer(t *testing.T) {
	ts := startServer(t, Config{}, "")
	d := dial(t, zmq4.Dealer, ts.Addr("router"))
	// With the empty delimiter a REQ socket would add.
	if err := d.SendMulti(zmq4.NewMsgFrom(nil, pack(t, m{"op_code": "INSERT", "key": "E(1,1)", "value": "E(2,2)"}))); err != nil {
		t.Fatal(err)
	}
	msg, err := d.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Frames) != 2 || len(msg.Frames[0]) != 0 {
		t.Fatalf("reply %q: want the delimiter back", msg.Frames)
	}
	ok(t, unpackMap(t, msg.Frames[1]))
	// Without one: the reply has none either. Several requests in
	// flight are answered in order.
	for i := range 3 {
		if err := d.Send(zmq4.NewMsg(pack(t, m{"op_code": "LOOKUP", "key": fmt.Sprintf("E(%d,1)", i)}))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		msg, err := d.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.Frames) != 1 {
			t.Fatalf("reply %d: frames %q", i, msg.Frames)
		}
		want := int64(0)
		if i == 1 { // E(1,1), inserted above
			want = 1
		}
		if r := ok(t, unpackMap(t, msg.Frames[0])); toInt(r["count"]) != want {
			t.Fatalf("reply %d: %v", i, r)
		}
	}
}

func TestPush(t *testing.T) {
	ts := startServer(t, Config{}, "")
	p := dial(t, zmq4.Push, ts.Addr("push"))
	send := func(b []byte) {
		if err := p.Send(zmq4.NewMsg(b)); err != nil {
			t.Fatal(err)
		}
	}
	send(pack(t, m{"op_code": "INSERT", "key": "E(1,1)", "value": "E(0,1)"}))
	send([]byte{0xc1}) // logged and counted; the connection goes on
	send(pack(t, m{"op_code": "query"}))
	send(pack(t, m{"op_code": "BATCH_INSERT", "entries": []any{m{"key": "E(1,1)", "value": "E(0,2)"}, m{"key": "E(1,1)", "value": "E(0,3)"}}}))
	send(pack(t, m{"op_code": "DELETE", "key": "E(1,1)", "value": "E(0,1)"}))
	send(pack(t, m{"op_code": "BATCH_DELETE", "entries": []any{m{"key": "E(1,1)", "value": "E(0,2)"}}}))
	send(pack(t, m{"op_code": "batch_insert", "triples": []any{[]any{"E(1,1)", "E(1,1)", "E(1,1)"}}}))
	send(pack(t, m{"op_code": "INSERT", "key": "E(9,9)", "value": "E(9,9)"})) // the last
	waitFor(t, func() bool { return ts.st.Count(cid.FromWords(0, 0, 9, 9)) == 1 })
	if got := ts.st.Get(cid.FromWords(0, 0, 1, 1)); len(got) != 1 || got[0] != cid.FromWords(0, 0, 0, 3) {
		t.Fatalf("after the PUSH mutations E(1,1) = %v", got)
	}
	if n := ts.currentBackend().TripleCount(); n != 1 {
		t.Fatalf("%d triples", n)
	}
	if f := ts.metrics.failed.Load(); f != 2 {
		t.Fatalf("%d failed PUSH messages counted, want 2", f)
	}
}

// waitFor polls cond for up to ten seconds: for effects of messages that
// have no reply.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPubSub(t *testing.T) {
	ts := startServer(t, Config{Heartbeat: 10 * time.Millisecond}, "")
	sub := dial(t, zmq4.Sub, ts.Addr("pub"))
	if err := sub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		t.Fatal(err)
	}
	next := func(typ string) map[string]any {
		t.Helper()
		for range 1000 {
			msg, err := sub.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if r := unpackMap(t, msg.Frames[0]); r["type"] == typ {
				return r
			}
		}
		t.Fatalf("no %s notification", typ)
		return nil
	}
	if hb := next("heartbeat"); hb["version"] != "1.0" || toInt(hb["seq"]) < 1 {
		t.Fatalf("heartbeat %v", hb)
	}
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(m{"command": "insert", "s": "E(1,1)", "p": "E(2,2)", "o": "E(3,3)"}))
	n := next("insert")
	if n["kind"] != "triple" || toInt(n["count"]) != 1 || toInt(n["changed"]) != 1 ||
		!sameValue(n["args"], []any{"E(0,0,1,1)", "E(0,0,2,2)", "E(0,0,3,3)"}) {
		t.Fatalf("insert notification %v", n)
	}
	ok(t, c.call(m{"command": "batch_delete", "entries": []any{[]any{"E(4,4)"}, []any{"E(5,5)", "E(6,6)"}}}))
	n = next("batch_delete")
	if n["kind"] != "pair" || toInt(n["count"]) != 2 || n["args"] != nil || n["changed"] != nil {
		t.Fatalf("batch_delete notification %v", n)
	}
	ok(t, c.call(m{"command": "delete", "key": "E(4,4)"}))
	if n = next("delete"); !sameValue(n["args"], []any{"E(0,0,4,4)", nil}) {
		t.Fatalf("delete notification %v", n)
	}
	failed(t, c.call(m{"command": "insert", "s": "E(0,0)", "p": "E(2,2)", "o": "E(3,3)"}), 400)
	ok(t, c.call(m{"command": "insert", "key": "E(7,7)", "value": "E(7,7)"}))
	if n = next("insert"); n["kind"] != "pair" { // the failed insert announced nothing
		t.Fatalf("notification %v after a failed insert", n)
	}
}

// TestPubSlowSubscriber: a subscriber that does not keep up loses
// notifications beyond its queue; publishing never waits for it.
func TestPubSlowSubscriber(t *testing.T) {
	dropped := 0
	h := newHub(func() { dropped++ })
	sub := &subscriber{q: make(chan []byte, pubQueue), topics: map[string]int{"": 1}}
	other := &subscriber{q: make(chan []byte, pubQueue), topics: map[string]int{"zz": 1}} // a prefix of none
	h.subs[sub], h.subs[other] = true, true
	h.n.Store(2)
	for range pubQueue + 10 {
		h.heartbeat()
	}
	if len(sub.q) != pubQueue || dropped != 10 || len(other.q) != 0 {
		t.Fatalf("queued %d, dropped %d, unsubscribed got %d", len(sub.q), dropped, len(other.q))
	}
}

// TestConcurrentClients: many REQ clients at once, each on its own
// connection and goroutine.
func TestConcurrentClients(t *testing.T) {
	ts := startServer(t, Config{}, t.TempDir())
	const clients, batches, size = 8, 10, 100
	var wg sync.WaitGroup
	for k := range clients {
		c := dial(t, zmq4.Req, ts.Addr("zmq"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				entries := make([]any, size)
				for i := range entries {
					entries[i] = []any{[]int{k + 1, b + 1}, []int{i + 1, 1}}
				}
				if r := c.call(m{"command": "batch_insert", "entries": entries}); r["status"] != "ok" {
					t.Errorf("client %d batch %d: %v", k, b, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := ts.st.Pairs(); got != clients*batches*size {
		t.Fatalf("%d pairs, want %d", got, clients*batches*size)
	}
}

// TestStalledClients: clients that stop mid-handshake, mid-message, or
// never read their replies do not hold up anyone else.
func TestStalledClients(t *testing.T) {
	ts := startServer(t, Config{MaxMessage: 1 << 20}, "")
	addr := strings.TrimPrefix(ts.Addr("zmq"), "tcp://")
	// Connected, silent: no greeting.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Half a greeting.
	half, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	half.Write([]byte{0xff, 0, 0, 0})
	// Half a message: the frame says 1000 bytes, 10 come.
	p := dialRaw(t, ts.Addr("zmq"), zmq4.Req)
	p.write(frame(nil, false))
	p.write(append(frame(make([]byte, 1000), true)[:9], make([]byte, 10)...))
	// A client that pipelines large requests and never reads the replies:
	// its socket buffers fill and the server's write to it blocks.
	greedy := dialRaw(t, ts.Addr("router"), zmq4.Dealer)
	req := pack(t, m{"command": "query", "limit": 100000})
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	entries := make([]any, 10000)
	for i := range entries {
		entries[i] = []any{"E(1,1)", "E(1,1)", fmt.Sprintf("E(%d,1)", i+1)}
	}
	ok(t, c.call(m{"command": "batch_insert", "triples": entries}))
	for range 200 {
		greedy.write(frame(req, true))
	}
	// Meanwhile everyone else is served at once.
	start := time.Now()
	for i := range 50 {
		ok(t, c.call(m{"command": "lookup", "key": fmt.Sprintf("E(%d,2)", i+1)}))
	}
	other := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, other.call(m{"command": "ping"}))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("served in %v behind stalled clients", d)
	}
}

func TestOversizeMessages(t *testing.T) {
	ts := startServer(t, Config{MaxMessage: 4096}, "")
	p := dialRaw(t, ts.Addr("zmq"), zmq4.Req)
	// A frame over the limit: 413, and the connection goes on.
	p.request(make([]byte, 5000))
	failed(t, p.reply(), 413)
	p.request(pack(t, m{"command": "ping"}))
	ok(t, p.reply())
	// Frames that are each small but over the limit together.
	var b []byte
	b = append(b, frame(nil, false)...)
	for range 3 {
		b = append(b, frame(make([]byte, 1500), false)...)
	}
	b = append(b, frame(make([]byte, 1500), true)...)
	p.write(b)
	failed(t, p.reply(), 413)
	// Too many frames.
	b = b[:0]
	for range maxFrames + 4 {
		b = append(b, frame(nil, false)...)
	}
	p.write(append(b, frame([]byte("x"), true)...))
	failed(t, p.reply(), 413)
	p.request(pack(t, m{"command": "ping"}))
	ok(t, p.reply())
	// A frame announcing 2^62 bytes: nothing is allocated, the server
	// waits for them, and others are served meanwhile.
	huge := dialRaw(t, ts.Addr("zmq"), zmq4.Req)
	hdr := make([]byte, 9)
	hdr[0] = flagLong
	binary.BigEndian.PutUint64(hdr[1:], 1<<62)
	huge.write(append(frame(nil, false), hdr...))
	huge.write(make([]byte, 100))
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(m{"command": "ping"}))
	// Oversize on the PUSH endpoint: dropped and counted.
	push := dialRaw(t, ts.Addr("push"), zmq4.Push)
	before := ts.metrics.failed.Load()
	push.write(frame(make([]byte, 5000), true))
	push.write(frame(pack(t, m{"op_code": "INSERT", "key": "E(1,1)", "value": "E(1,1)"}), true))
	waitFor(t, func() bool { return ts.st.Len() == 1 })
	if ts.metrics.failed.Load() != before+1 {
		t.Fatal("the oversize PUSH message was not counted")
	}
}

// TestHostileHandshakes: bad greetings, a malformed READY command (which
// makes zmq4 panic) and incompatible socket types end the connection,
// never the server.
func TestHostileHandshakes(t *testing.T) {
	ts := startServer(t, Config{HandshakeTimeout: time.Second}, "")
	addr := strings.TrimPrefix(ts.Addr("zmq"), "tcp://")
	greeting := make([]byte, 64)
	greeting[0], greeting[9], greeting[10] = 0xff, 0x7f, 3
	copy(greeting[12:], "NULL")
	// A property whose value length lies past the end: zmq4 slices out of
	// range (a panic that takes down a process using zmq4's own sockets).
	readyBad := []byte{flagCommand, 10, 5, 'R', 'E', 'A', 'D', 'Y', 3, 'a', 'b', 'c'}
	for name, b := range map[string][]byte{
		"garbage":          []byte("GET / HTTP/1.1\r\n\r\n" + strings.Repeat("x", 100)),
		"ZMTP 2":           {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 1, 5},
		"CURVE":            append(append([]byte{}, greeting[:12]...), append([]byte("CURVE"), make([]byte, 47)...)...),
		"malformed READY":  append(append([]byte{}, greeting...), readyBad...),
		"huge READY":       append(append([]byte{}, greeting...), flagCommand|flagLong, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"not a command":    append(append([]byte{}, greeting...), frame([]byte("hello"), true)...),
		"silent after hi":  greeting,
		"empty connection": nil,
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(b)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, nc) // until the server hangs up
		nc.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the server kept the connection open", name)
		}
	}
	// A PUB peer is no REQ client.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zmq4.Open(nc, null.Security(), zmq4.Pub, nil, false, nil); err == nil {
		t.Error("a PUB peer completed the handshake with the REQ/REP endpoint")
	}
	nc.Close()
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(m{"command": "ping"}))
}

func TestConnectionLimit(t *testing.T) {
	ts := startServer(t, Config{MaxConns: 2}, "")
	a := dialRaw(t, ts.Addr("zmq"), zmq4.Req)
	b := dialRaw(t, ts.Addr("router"), zmq4.Dealer)
	a.request(pack(t, m{"command": "ping"}))
	ok(t, a.reply())
	// The third is closed before its handshake completes.
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.Addr("zmq"), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := zmq4.Open(nc, null.Security(), zmq4.Req, nil, false, nil); err == nil {
		t.Fatal("a connection over the limit completed its handshake")
	}
	if testCounter(ts.metrics.rejected.WithLabelValues("zmq")) != 1 {
		t.Fatal("the refused connection was not counted")
	}
	b.nc.Close()
	waitFor(t, func() bool {
		ts.conns.mu.Lock()
		defer ts.conns.mu.Unlock()
		return len(ts.conns.live) == 1
	})
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(m{"command": "ping"}))
}

// blockingBackend holds InsertTriples until released.
type blockingBackend struct {
	Backend
	entered chan struct{}
	release chan struct{}
}

func (b *blockingBackend) InsertTriples(ts []Triple) (int, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Backend.InsertTriples(ts)
}

func TestDrain(t *testing.T) {
	for _, expire := range []bool{false, true} {
		t.Run(fmt.Sprintf("expire=%v", expire), func(t *testing.T) {
			st := openMemStore(t)
			bb := &blockingBackend{Backend: st, entered: make(chan struct{}), release: make(chan struct{})}
			ts := startServerWith(t, Config{}, nil, bb)
			p := dialRaw(t, ts.Addr("zmq"), zmq4.Req)
			idle := dialRaw(t, ts.Addr("zmq"), zmq4.Req)
			idle.request(pack(t, m{"command": "ping"}))
			ok(t, idle.reply())
			p.request(pack(t, m{"command": "insert", "s": "E(1,1)", "p": "E(1,1)", "o": "E(1,1)"}))
			<-bb.entered
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- ts.Shutdown(ctx) }()
			// The idle connection is closed; the busy one waits.
			if _, err := idle.zc.RecvMsg(); err == nil {
				t.Fatal("an idle connection got a message while draining")
			}
			select {
			case err := <-done:
				t.Fatalf("Shutdown returned %v with a request in progress", err)
			default:
			}
			if expire {
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("Shutdown = %v, want context.Canceled", err)
				}
				close(bb.release)
				if _, err := p.zc.RecvMsg(); err == nil {
					t.Fatal("a reply came after the drain gave up")
				}
				ts.conns.wg.Wait() // the handler ends once the store returns
				return
			}
			close(bb.release)
			if r := p.reply(); r["status"] != "ok" {
				t.Fatalf("the request in progress got %v", r)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			cancel()
			// Nothing is accepted any more.
			if nc, err := net.Dial("tcp", strings.TrimPrefix(ts.Addr("zmq"), "tcp://")); err == nil {
				nc.Close()
				t.Fatal("the endpoint still accepts connections")
			}
		})
	}
}

// TestDisconnectMidRequest: a client that leaves after sending a request
// still has it applied (it was received whole); one that leaves in the
// middle of a message has nothing applied; the server goes on.
func TestDisconnectMidRequest(t *testing.T) {
	ts := startServer(t, Config{}, "")
	whole := dialRaw(t, ts.Addr("zmq"), zmq4.Req)
	whole.request(pack(t, m{"command": "insert", "key": "E(1,1)", "value": "E(1,1)"}))
	whole.nc.Close()
	part := dialRaw(t, ts.Addr("zmq"), zmq4.Req)
	body := pack(t, m{"command": "insert", "key": "E(2,2)", "value": "E(2,2)"})
	msg := append(frame(nil, false), frame(body, true)...)
	part.write(msg[:len(msg)-3])
	part.nc.Close()
	waitFor(t, func() bool {
		ts.conns.mu.Lock()
		defer ts.conns.mu.Unlock()
		return len(ts.conns.live) == 0
	})
	if ts.st.Count(cid.FromWords(0, 0, 1, 1)) != 1 || ts.st.Count(cid.FromWords(0, 0, 2, 2)) != 0 {
		t.Fatalf("after the disconnects: %d, %d", ts.st.Count(cid.FromWords(0, 0, 1, 1)), ts.st.Count(cid.FromWords(0, 0, 2, 2)))
	}
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(m{"command": "ping"}))
}
