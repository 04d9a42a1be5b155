package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cidstore/cidstore/store"
	"github.com/go-zeromq/zmq4"
)

// get performs a request and returns the status and body.
func httpDo(t testing.TB, method, url, token, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestHTTPReadiness(t *testing.T) {
	s := New(Config{HTTP: "127.0.0.1:0", ZMQ: "tcp://127.0.0.1:0"})
	if err := s.ListenHTTP(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr("http")
	if code, body, _ := httpDo(t, "GET", base+"/health", "", ""); code != 200 || body != "ok" {
		t.Fatalf("/health before Start: %d %q", code, body)
	}
	if code, body, _ := httpDo(t, "GET", base+"/ready", "", ""); code != 503 || body != "not ready" {
		t.Fatalf("/ready before Start: %d %q", code, body)
	}
	if code, _, _ := httpDo(t, "GET", base+"/config", "", ""); code != 503 {
		t.Fatalf("/config before Start: %d", code)
	}
	if code, body, _ := httpDo(t, "GET", base+"/metrics", "", ""); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics before Start: %d", code)
	}
	st := openMemStore(t)
	if err := s.Start(st); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := httpDo(t, "GET", base+"/ready", "", ""); code != 200 || body != "ready" {
		t.Fatalf("/ready after Start: %d %q", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal("a second Shutdown:", err)
	}
}

func TestHTTPMetrics(t *testing.T) {
	ts := startServer(t, Config{}, t.TempDir())
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(m{"command": "insert", "key": "E(1,1)", "value": "E(1,1)"}))
	failed(t, c.call(m{"command": "nope"}), 400)
	base := "http://" + ts.Addr("http")
	for _, path := range []string{"/metrics", "/metrics/prometheus"} {
		code, body, _ := httpDo(t, "GET", base+path, "", "")
		if code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		for _, want := range []string{
			`cidstore_server_requests_total{code="200",command="insert",endpoint="zmq"} 1`,
			`cidstore_server_requests_total{code="400",command="unknown",endpoint="zmq"} 1`,
			`cidstore_server_request_seconds_bucket{command="insert",endpoint="zmq",le="+Inf"} 1`,
			`cidstore_server_connections{endpoint="zmq"} 1`,
			"cidstore_keys 1", "cidstore_wal_fsyncs_total", "cidstore_checkpoints_total",
			`cidstore_worker_runs_total{worker="checkpoint"}`, "go_goroutines", "process_open_fds",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
	}
	if code, body, _ := httpDo(t, "GET", base+"/nope", "", ""); code != 404 {
		t.Fatalf("/nope: %d %s", code, body)
	}
	_, body, _ := httpDo(t, "GET", base+"/metrics", "", "")
	if !strings.Contains(body, `cidstore_server_http_requests_total{code="404",path="other"} 1`) {
		t.Error("HTTP requests are not counted by path and code")
	}
}

func TestHTTPConfig(t *testing.T) {
	const token = "s3cret"
	for _, configured := range []bool{false, true} {
		cfg := Config{}
		if configured {
			cfg.Token = token
		}
		ts := startServer(t, cfg, "")
		base := "http://" + ts.Addr("http")
		code, body, _ := httpDo(t, "GET", base+"/config", "", "")
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
			t.Fatalf("GET /config: %d %s", code, body)
		}
		if got["sync"] != "always" || got["checkpoint_interval"] != "10m0s" || got["inline_values"] != 32.0 || got["checkpoint_wal_bytes"] != float64(64<<20) {
			t.Fatalf("GET /config: %v", got)
		}
		put := func(tok, body string) (int, string, http.Header) { return httpDo(t, "PUT", base+"/config", tok, body) }
		if !configured {
			if code, body, _ := put(token, `{"inline_values": 8}`); code != 403 || !strings.Contains(body, `"error_code": 403`) {
				t.Fatalf("PUT without a configured token: %d %s", code, body)
			}
			if code, _, _ := httpDo(t, "POST", base+"/checkpoint", token, ""); code != 403 {
				t.Fatalf("POST /checkpoint without a configured token: %d", code)
			}
			continue
		}
		for _, tok := range []string{"", "wrong", token + "x"} {
			if code, _, h := put(tok, `{"inline_values": 8}`); code != 401 || h.Get("WWW-Authenticate") == "" {
				t.Fatalf("PUT with token %q: %d", tok, code)
			}
		}
		for _, bad := range []string{
			`{"inline_values": 0}`,                       // out of range
			`{"inline_values": "8"}`,                     // wrong type
			`{"nope": 1}`,                                // unknown field
			`{"sync": "sometimes"}`,                      // unknown name
			`{"checkpoint_interval": "10 minutes"}`,      // bad duration
			`{"checkpoint_interval": 600}`,               // numbers are not durations
			`[1, 2]`,                                     // not an object
			`{"inline_values": 8, "gc_interval": "1ms"}`, // one bad field spoils all
		} {
			code, body, _ := put(token, bad)
			if code != 400 || !strings.Contains(body, `"error_msg"`) {
				t.Errorf("PUT %s: %d %s", bad, code, body)
			}
		}
		if c := ts.st.Config(); c.InlineValues != 32 || c.GCInterval != 5*time.Minute {
			t.Fatalf("a rejected PUT changed the configuration: %+v", c)
		}
		code, body, _ = put(token, `{"inline_values": 8, "sync": "never", "checkpoint_interval": "1h", "compact_interval": 0, "worker_duty": 0.5}`)
		if code != 200 {
			t.Fatalf("PUT: %d %s", code, body)
		}
		c := ts.st.Config()
		if c.InlineValues != 8 || c.Sync.String() != "never" || c.CheckpointInterval != time.Hour || c.CompactInterval != 0 || c.WorkerDuty != 0.5 {
			t.Fatalf("after PUT: %+v", c)
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || got["inline_values"] != 8.0 || got["sync"] != "never" {
			t.Fatalf("PUT reply: %s", body)
		}
		// An in-memory store has no checkpoints.
		if code, body, _ := httpDo(t, "POST", base+"/checkpoint", token, ""); code != 400 {
			t.Fatalf("POST /checkpoint in memory: %d %s", code, body)
		}
		if code, _, _ := httpDo(t, "DELETE", base+"/config", token, ""); code != 405 {
			t.Fatalf("DELETE /config: %d", code)
		}
	}
}

func TestHTTPCheckpoint(t *testing.T) {
	ts := startServer(t, Config{Token: "t"}, t.TempDir())
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(m{"command": "insert", "key": "E(1,1)", "value": "E(1,1)"}))
	code, body, _ := httpDo(t, "POST", "http://"+ts.Addr("http")+"/checkpoint", "t", "")
	var r map[string]any
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil || r["status"] != "ok" || r["lsn"].(float64) < 1 {
		t.Fatalf("POST /checkpoint: %d %s", code, body)
	}
	if ts.st.Stats().Checkpoints.Count != 1 {
		t.Fatal("no checkpoint written")
	}
}

// TestPprofLoopbackOnly: the profiles are served only on a loopback
// listener.
func TestPprofLoopbackOnly(t *testing.T) {
	s := New(Config{})
	for _, loopback := range []bool{true, false} {
		srv := httptest.NewServer(s.httpHandler(loopback))
		code, _, _ := httpDo(t, "GET", srv.URL+"/debug/pprof/", "", "")
		srv.Close()
		if want := map[bool]int{true: 200, false: 404}[loopback]; code != want {
			t.Errorf("loopback %v: /debug/pprof/ answered %d, want %d", loopback, code, want)
		}
	}
	ts := startServer(t, Config{}, "")
	if code, _, _ := httpDo(t, "GET", "http://"+ts.Addr("http")+"/debug/pprof/cmdline", "", ""); code != 200 {
		t.Errorf("pprof on a loopback listener: %d", code)
	}
}

func TestJSONName(t *testing.T) {
	for in, want := range map[string]string{
		"CheckpointWALBytes": "checkpoint_wal_bytes",
		"GCInterval":         "gc_interval",
		"Sync":               "sync",
		"WorkerDuty":         "worker_duty",
		"SnapshotsKept":      "snapshots_kept",
		"ID":                 "id",
		"HTTP2Port":          "http2_port",
	} {
		if got := jsonName(in); got != want {
			t.Errorf("jsonName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConfigRoundTrip: every field GET renders, PUT takes back.
func TestConfigRoundTrip(t *testing.T) {
	st, err := store.Open("", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := st.Config()
	b, err := json.Marshal(configJSON(c))
	if err != nil {
		t.Fatal(err)
	}
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(b, &patch); err != nil {
		t.Fatal(err)
	}
	var back store.Config
	if err := patchConfig(&back, patch); err != nil {
		t.Fatal(err)
	}
	if back != c {
		t.Fatalf("round trip: %+v, want %+v", back, c)
	}
}
