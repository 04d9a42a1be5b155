package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
	"github.com/vmihailenco/msgpack/v5"
)

// serveChildEnv makes the test binary run "cidstore ARGS..." (see
// TestMain), so that tests can signal a real server process.
const serveChildEnv = "CIDSTORE_TEST_SERVE_CHILD"

// startServeChild runs `cidstore serve args... DIR` as a child process
// and returns it with its bound addresses once it is ready.
func startServeChild(t *testing.T, dir string, args ...string) (*exec.Cmd, map[string]string, *bytes.Buffer) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	args = append([]string{"serve", "-zmq", "tcp://127.0.0.1:0", "-push", "", "-router", "", "-pub", "",
		"-http", "127.0.0.1:0", "-ready-file", ready}, args...)
	cmd := exec.Command(os.Args[0], append(args, dir)...)
	cmd.Env = append(os.Environ(), serveChildEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(ready)
		if err == nil {
			var addrs map[string]string
			if err := json.Unmarshal(b, &addrs); err != nil {
				t.Fatal(err)
			}
			return cmd, addrs, &out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not become ready:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExit waits up to a minute for cmd to exit and returns its code.
func waitExit(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the server did not exit within a minute of the signal:\n%s", out.String())
		return -1
	}
}

// reqPeer is a REQ client with deadlines: a request whose reply does not
// come (the server stopped reading) fails instead of hanging.
type reqPeer struct {
	nc net.Conn
	zc *zmq4.Conn
}

func dialReq(addr string) (*reqPeer, error) { return dialReqWith(net.Dialer{}, addr) }

func dialReqWith(d net.Dialer, addr string) (*reqPeer, error) {
	nc, err := d.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	zc, err := zmq4.Open(nc, null.Security(), zmq4.Req, nil, false, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &reqPeer{nc, zc}, nil
}

// call sends req and reports whether the server acknowledged it.
func (p *reqPeer) call(req map[string]any) (map[string]any, error) {
	b, err := msgpack.Marshal(req)
	if err != nil {
		return nil, err
	}
	p.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := p.zc.SendMsg(zmq4.NewMsgFrom(nil, b)); err != nil {
		return nil, err
	}
	msg, err := p.zc.RecvMsg()
	if err != nil {
		return nil, err
	}
	var r map[string]any
	if err := msgpack.Unmarshal(msg.Frames[len(msg.Frames)-1], &r); err != nil {
		return nil, err
	}
	return r, nil
}

// TestServeSIGTERMUnderLoad stops a durable server with SIGTERM while
// four clients write batches and single inserts of triples and pairs as
// fast as they can, then reopens its directory: every write the server
// acknowledged is there, and the server exited 0.
func TestServeSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := filepath.Join(t.TempDir(), "db")
	cmd, addrs, out := startServeChild(t, dir, "-sync", "always", "-drain-timeout", "30s")
	const clients = 4
	var (
		mu    sync.Mutex
		acked acknowledged
		count atomic.Int64
		wg    sync.WaitGroup
	)
	for k := range clients {
		p, err := dialReq(addrs["zmq"])
		if err != nil {
			t.Fatal(err)
		}
		defer p.nc.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 1; ; b++ {
				req, w := loadRequest(k, b)
				r, err := p.call(req)
				if err != nil || r["status"] != "ok" {
					return // the server is draining or gone
				}
				mu.Lock()
				acked.pairs = append(acked.pairs, w.pairs...)
				acked.triples = append(acked.triples, w.triples...)
				mu.Unlock()
				count.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for count.Load() < 200 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, cmd, out)
	wg.Wait()
	if code != 0 || !strings.Contains(out.String(), "msg=stopped") {
		t.Fatalf("the server exited %d:\n%s", code, out.String())
	}
	if len(acked.pairs) == 0 || len(acked.triples) == 0 {
		t.Fatal("no write was acknowledged")
	}
	checkAcked(t, dir, acked)
	t.Logf("exit %d after %d acknowledged requests (%d pairs, %d triples); all present after reopening",
		code, count.Load(), len(acked.pairs), len(acked.triples))
}

// acknowledged is what the server acknowledged.
type acknowledged struct {
	pairs   []store.Pair
	triples []store.Triple
}

// loadRequest returns client k's request number b, cycling through a
// single pair insert, a batch of 100 pairs, a batch of 100 triples and a
// single triple insert, and what it writes.
func loadRequest(k, b int) (map[string]any, acknowledged) {
	var w acknowledged
	key := cid.FromWords(0, uint64(k+1), uint64(b), 0)
	word := func(i int) cid.CID { return cid.FromWords(0, 0, 0, uint64(i+1)) }
	switch b % 4 {
	case 0:
		w.pairs = []store.Pair{{Key: key, Value: word(0)}}
		return map[string]any{"command": "insert", "key": key.EString(), "value": "E(0,1)"}, w
	case 1:
		entries := make([]any, 100)
		for i := range entries {
			w.pairs = append(w.pairs, store.Pair{Key: key, Value: word(i)})
			entries[i] = []any{key.EString(), word(i).EString()}
		}
		return map[string]any{"command": "batch_insert", "entries": entries}, w
	case 2:
		triples := make([]any, 100)
		for i := range triples {
			t := store.Triple{S: key, P: word(i % 7), O: word(i)}
			w.triples = append(w.triples, t)
			triples[i] = map[string]any{"s": t.S.EString(), "p": t.P.EString(), "o": t.O.EString()}
		}
		return map[string]any{"command": "batch_insert", "triples": triples}, w
	}
	t := store.Triple{S: key, P: word(99), O: word(98)}
	w.triples = []store.Triple{t}
	return map[string]any{"command": "insert", "s": t.S.EString(), "p": t.P.EString(), "o": t.O.EString()}, w
}

// checkAcked opens the store in dir and checks that everything
// acknowledged is there.
func checkAcked(t *testing.T, dir string, acked acknowledged) {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range acked.pairs {
		if !s.Contains(p.Key, p.Value) {
			t.Fatalf("acknowledged pair %v -> %v lost (of %d acknowledged)", p.Key.EString(), p.Value.EString(), len(acked.pairs))
		}
	}
	for _, tr := range acked.triples {
		if !s.HasTriple(tr) {
			t.Fatalf("acknowledged triple %v %v %v lost (of %d acknowledged)", tr.S.EString(), tr.P.EString(), tr.O.EString(), len(acked.triples))
		}
	}
}

// TestServeSecondSignal: a second signal during the drain exits at once
// with status 1, and what was acknowledged before is still durable. The
// drain is held up by a client that asked for a large query result and
// does not read it.
func TestServeSecondSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := filepath.Join(t.TempDir(), "db")
	cmd, addrs, out := startServeChild(t, dir, "-sync", "always", "-drain-timeout", "1m", "-max-query-limit", "200000")
	p, err := dialReq(addrs["zmq"])
	if err != nil {
		t.Fatal(err)
	}
	defer p.nc.Close()
	var acked acknowledged
	// Long CIDs (words of 20 digits) make rows of about 270 bytes.
	long := func(a, b uint64) []uint64 { return []uint64{1<<64 - 1 - a, 1<<64 - 1 - b, 1<<64 - 1, 1<<64 - 1} }
	for b := range 3 {
		triples := make([]any, 10000)
		entries := make([]any, 10)
		for i := range triples {
			triples[i] = []any{long(uint64(b), uint64(i)), long(0, uint64(i%16)), long(uint64(b), uint64(i))}
		}
		for i := range entries {
			k, v := cid.FromWords(0, 0, uint64(b+1), 1), cid.FromWords(0, 0, 0, uint64(i+1))
			acked.pairs = append(acked.pairs, store.Pair{Key: k, Value: v})
			entries[i] = []any{k.EString(), v.EString()}
		}
		for _, req := range []map[string]any{{"command": "batch_insert", "triples": triples}, {"command": "batch_insert", "entries": entries}} {
			if r, err := p.call(req); err != nil || r["status"] != "ok" {
				t.Fatalf("batch %d: %v %v", b, r, err)
			}
		}
	}
	// 30000 rows of about 270 bytes, 8 MB: more than the socket buffers
	// hold, so the server blocks writing the reply nobody reads.
	// Its receive buffer is kept small, so that only the server's send
	// buffer (at most net.ipv4.tcp_wmem's 4 MiB by default) takes data.
	small := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	greedy, err := dialReqWith(small, addrs["zmq"])
	if err != nil {
		t.Fatal(err)
	}
	defer greedy.nc.Close()
	b, _ := msgpack.Marshal(map[string]any{"command": "query", "limit": 200000})
	if err := greedy.zc.SendMsg(zmq4.NewMsgFrom(nil, b)); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addrs["http"]
	waitHTTP(t, base+"/metrics", "cidstore_server_requests_in_flight 1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, base+"/ready", "not ready") // draining
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, out); code != 1 || !strings.Contains(out.String(), "second signal") {
		t.Fatalf("after a second signal the server exited %d:\n%s", code, out.String())
	}
	checkAcked(t, dir, acked)
}

// waitHTTP polls url for up to 30 seconds until its body contains want.
func waitHTTP(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never said %q", url, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"serve"},
		{"serve", "-memory", "dir"},
		{"serve", "a", "b"},
		{"serve", "-sync", "sometimes", "-memory"},
		{"serve", "-log-format", "xml", "-memory"},
		{"serve", "-log-level", "loud", "-memory"},
		{"serve", "-bogus"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("cidstore %v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-token-file", "/nonexistent", "-memory"}, &out, &errOut); code != 1 {
		t.Errorf("a missing token file: exit %d, want 1", code)
	}
}

// TestServeInProcess runs the command in this process with every
// endpoint on a kernel-chosen port and stops it through its context.
func TestServeInProcess(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready.json")
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("t0k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-memory", "-zmq", "tcp://127.0.0.1:0", "-push", "tcp://127.0.0.1:0",
			"-router", "tcp://127.0.0.1:0", "-pub", "tcp://127.0.0.1:0", "-http", "127.0.0.1:0",
			"-token-file", tok, "-log-format", "json", "-ready-file", ready}, &out, &errOut)
	}()
	var addrs map[string]string
	deadline := time.Now().Add(10 * time.Second)
	for addrs == nil {
		if b, err := os.ReadFile(ready); err == nil {
			if err := json.Unmarshal(b, &addrs); err != nil {
				t.Fatal(err)
			}
		} else if time.Now().After(deadline) {
			t.Fatal("not ready")
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, name := range []string{"zmq", "push", "router", "pub", "http"} {
		if addrs[name] == "" {
			t.Fatalf("no %s address in %v", name, addrs)
		}
	}
	p, err := dialReq(addrs["zmq"])
	if err != nil {
		t.Fatal(err)
	}
	if r, err := p.call(map[string]any{"command": "ping"}); err != nil || r["status"] != "ok" {
		t.Fatalf("ping: %v %v", r, err)
	}
	p.nc.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"msg":"stopped"`) {
		t.Fatalf("log: %s", out.String())
	}
}
