package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// startRESP serves a store on a RESP port the kernel picks (the ZeroMQ
// endpoints and HTTP too, as every test server has them) and returns a
// go-redis client of protocol version proto (2 or 3) for it.
func startRESP(t testing.TB, cfg Config, dir string, proto int) (*testServer, *redis.Client) {
	t.Helper()
	cfg.RESP = "127.0.0.1:0"
	ts := startServer(t, cfg, dir)
	return ts, redisClient(t, ts, proto, "")
}

func redisClient(t testing.TB, ts *testServer, proto int, password string) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{
		Addr:        ts.Addr("resp"),
		Protocol:    proto,
		Password:    password,
		DialTimeout: 5 * time.Second, ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second,
		MaxRetries: -1, // a failed command is a failure of the test, not a retry
	})
	t.Cleanup(func() { rc.Close() })
	return rc
}

// e returns the "E(a,b,c,d)" text of the CID with words 0, 0, k, v.
func e(k, v uint64) string { return cid.FromWords(0, 0, k, v).EString() }

// must returns a command's result, or fails the test on its error.
func must[T any](t testing.TB, c interface{ Result() (T, error) }) T {
	t.Helper()
	v, err := c.Result()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// call returns what f, a result method of a go-redis command (Int, Slice,
// Text, ...), returns, or fails the test on its error.
func call[T any](t testing.TB, f func() (T, error)) T {
	t.Helper()
	v, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantErr fails unless err is a Redis error reply starting with prefix.
func wantErr(t testing.TB, err error, prefix string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error %v, want one starting with %q", err, prefix)
	}
}

func TestRESPSets(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("resp", proto), func(t *testing.T) {
			_, rc := startRESP(t, Config{}, "", proto)
			ctx := context.Background()
			k := e(1, 1)
			if n := must(t, rc.SAdd(ctx, k, e(2, 3), e(2, 1), e(2, 2), e(2, 1))); n != 3 {
				t.Fatalf("SADD: %d new, want 3", n)
			}
			if n := must(t, rc.SAdd(ctx, k, e(2, 1), e(2, 4))); n != 1 {
				t.Fatalf("SADD again: %d new, want 1", n)
			}
			want := []string{e(2, 1), e(2, 2), e(2, 3), e(2, 4)}
			if got := must(t, rc.SMembers(ctx, k)); !slices.Equal(got, want) {
				t.Fatalf("SMEMBERS %v, want %v", got, want)
			}
			if !must(t, rc.SIsMember(ctx, k, e(2, 2))) || must(t, rc.SIsMember(ctx, k, e(2, 9))) {
				t.Fatal("SISMEMBER wrong")
			}
			// Every text form names the same CID: 64 hex digits, the
			// 128-bit E(h,l), leading zeros (redis-benchmark's
			// __rand_int__), and 32 raw bytes.
			c := cid.FromWords(0, 0, 2, 2)
			forms := []any{c.String(), "E(2,2)", "E(0000,000,00000002,0000000000002)", string(c[:])}
			got := must(t, rc.SMIsMember(ctx, k, append(forms, e(2, 9))...))
			if !slices.Equal(got, []bool{true, true, true, true, false}) {
				t.Fatalf("SMISMEMBER %v", got)
			}
			if n := must(t, rc.SCard(ctx, k)); n != 4 {
				t.Fatalf("SCARD %d", n)
			}
			if n := must(t, rc.SCard(ctx, e(9, 9))); n != 0 {
				t.Fatalf("SCARD of a missing key %d", n)
			}
			if n := must(t, rc.SRem(ctx, k, e(2, 1), e(2, 9), e(2, 1))); n != 1 {
				t.Fatalf("SREM removed %d, want 1", n)
			}
			if got := must(t, rc.Type(ctx, k)); got != "set" {
				t.Fatalf("TYPE %q", got)
			}
			if got := must(t, rc.Type(ctx, e(9, 9))); got != "none" {
				t.Fatalf("TYPE of a missing key %q", got)
			}
			must(t, rc.SAdd(ctx, e(1, 2), e(2, 1)))
			must(t, rc.SAdd(ctx, e(1, 3), e(2, 1)))
			if n := must(t, rc.DBSize(ctx)); n != 3 {
				t.Fatalf("DBSIZE %d", n)
			}
			if n := must(t, rc.Exists(ctx, k, e(1, 2), e(9, 9), k)); n != 3 {
				t.Fatalf("EXISTS %d, want 3", n)
			}
			if n := must(t, rc.Del(ctx, k, e(9, 9), k)); n != 1 {
				t.Fatalf("DEL %d, want 1", n)
			}
			if n := must(t, rc.Unlink(ctx, e(1, 2))); n != 1 {
				t.Fatalf("UNLINK %d, want 1", n)
			}
			if got := must(t, rc.SMembers(ctx, k)); len(got) != 0 {
				t.Fatalf("SMEMBERS of a deleted key %v", got)
			}
			if n := must(t, rc.DBSize(ctx)); n != 1 {
				t.Fatalf("DBSIZE %d", n)
			}
		})
	}
}

func TestRESPScan(t *testing.T) {
	_, rc := startRESP(t, Config{}, "", 2)
	ctx := context.Background()
	const keys = 95
	var want []string
	for i := range keys {
		must(t, rc.SAdd(ctx, e(7, uint64(i+1)), e(8, 1)))
		want = append(want, e(7, uint64(i+1)))
	}
	// SCAN with COUNT: every key once, in order, 10 at a time.
	var got []string
	var cursor uint64
	for range keys {
		page, next := must2(t)(rc.Scan(ctx, cursor, "", 10).Result())
		if len(page) > 10 {
			t.Fatalf("SCAN COUNT 10 returned %d", len(page))
		}
		got = append(got, page...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("SCAN returned %d keys %v..., want %d", len(got), got[:min(3, len(got))], len(want))
	}
	// The iterator of go-redis, with the default COUNT.
	n := 0
	for it := rc.Scan(ctx, 0, "*", 0).Iterator(); it.Next(ctx); {
		n++
	}
	if n != keys {
		t.Fatalf("SCAN iterator: %d keys", n)
	}
	if _, _, err := rc.Scan(ctx, 0, "E(*", 10).Result(); err == nil {
		t.Fatal("SCAN MATCH with a pattern: no error")
	}
	if _, _, err := rc.Scan(ctx, 12345, "", 10).Result(); err == nil {
		t.Fatal("SCAN with an unknown cursor: no error")
	}
	if page, _ := must2(t)(rc.ScanType(ctx, 0, "", 10, "string").Result()); len(page) != 0 {
		t.Fatalf("SCAN TYPE string: %v", page)
	}

	// SSCAN over a key's members.
	k := e(6, 1)
	var members []string
	for i := range 25 {
		members = append(members, e(6, uint64(100+i)))
	}
	must(t, rc.SAdd(ctx, k, toAny(members)...))
	got, cursor = nil, 0
	for range 25 {
		page, next := must2(t)(rc.SScan(ctx, k, cursor, "", 7).Result())
		got = append(got, page...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	if !slices.Equal(got, members) {
		t.Fatalf("SSCAN %v, want %v", got, members)
	}
	if _, _, err := rc.SScan(ctx, e(6, 2), cursor+1, "", 7).Result(); err == nil {
		t.Fatal("SSCAN with an unknown cursor: no error")
	}
}

func must2(t testing.TB) func([]string, uint64, error) ([]string, uint64) {
	return func(s []string, c uint64, err error) ([]string, uint64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func TestRESPTriples(t *testing.T) {
	_, rc := startRESP(t, Config{}, "", 2)
	ctx := context.Background()
	s, p, o1, o2 := e(1, 1), e(1, 2), e(1, 3), e(1, 4)
	if n := call(t, rc.Do(ctx, "TADD", s, p, o1, s, p, o2, s, p, o1).Int); n != 2 {
		t.Fatalf("TADD: %d new, want 2", n)
	}
	if n := call(t, rc.Do(ctx, "TCOUNT").Int); n != 2 {
		t.Fatalf("TCOUNT %d", n)
	}
	if n := call(t, rc.Do(ctx, "TCOUNT", "*", "*", o2).Int); n != 1 {
		t.Fatalf("TCOUNT * * o2: %d", n)
	}
	got := call(t, rc.Do(ctx, "TQUERY", s, "*", "*").Slice)
	if len(got) != 2 || fmt.Sprint(got[0]) != fmt.Sprint([]any{s, p, o1}) || fmt.Sprint(got[1]) != fmt.Sprint([]any{s, p, o2}) {
		t.Fatalf("TQUERY s * *: %v", got)
	}
	if got := call(t, rc.Do(ctx, "TQUERY", "*", p, "*", "limit", "1").Slice); len(got) != 1 {
		t.Fatalf("TQUERY LIMIT 1: %v", got)
	}
	if got := call(t, rc.Do(ctx, "TQUERY", "*", "*", e(5, 5)).Slice); len(got) != 0 {
		t.Fatalf("TQUERY of nothing: %v", got)
	}
	if n := call(t, rc.Do(ctx, "TDEL", s, p, o1, s, p, e(5, 5)).Int); n != 1 {
		t.Fatalf("TDEL removed %d, want 1", n)
	}
	if n := call(t, rc.Do(ctx, "TCOUNT", s, "*", "*").Int); n != 1 {
		t.Fatalf("TCOUNT after TDEL %d", n)
	}
	wantErr(t, rc.Do(ctx, "TADD", s, p).Err(), "ERR wrong number of arguments")
	wantErr(t, rc.Do(ctx, "TADD", s, p, o1, s).Err(), "ERR wrong number of arguments")
	wantErr(t, rc.Do(ctx, "TADD", s, "*", o1).Err(), "ERR invalid CID")
	wantErr(t, rc.Do(ctx, "TQUERY", s, p, o1, "LIMIT").Err(), "ERR syntax error")
	wantErr(t, rc.Do(ctx, "TQUERY", s, p, o1, "LIMIT", "-1").Err(), "ERR value is not an integer")
	wantErr(t, rc.Do(ctx, "TCOUNT", s).Err(), "ERR wrong number of arguments")
}

func TestRESPErrors(t *testing.T) {
	_, rc := startRESP(t, Config{MaxMessage: 4096}, "", 2)
	ctx := context.Background()
	k := e(1, 1)
	cases := []struct {
		args []any
		want string
	}{
		{[]any{"NOSUCH", "a"}, "ERR unknown command 'NOSUCH'"},
		{[]any{"SADD", k}, "ERR wrong number of arguments for 'sadd' command"},
		{[]any{"SISMEMBER", k}, "ERR wrong number of arguments"},
		{[]any{"SADD", k, "E(1,2,3)"}, "ERR invalid CID"},
		{[]any{"SADD", "banana", e(1, 2)}, "ERR invalid CID"},
		{[]any{"SADD", k, "E(0,0,0,0)"}, "ERR apply: pair 0: the zero CID is not a value"},
		{[]any{"SADD", k, "E(18446744073709551616,0,0,1)"}, "ERR invalid CID"},
		{[]any{"SMEMBERS", "E(0,0)"}, "ERR lookup: the zero CID is not a key"},
		{[]any{"SELECT", "1"}, "ERR DB index is out of range"},
		{[]any{"CONFIG", "SET", "appendfsync", "no"}, "ERR CONFIG SET is not supported"},
		{[]any{"SAVE"}, "NOPERM"},
		{[]any{"FLUSHALL"}, "NOPERM FLUSHALL is disabled"},
		{[]any{"EXEC"}, "ERR EXEC without MULTI"},
		{[]any{"DISCARD"}, "ERR DISCARD without MULTI"},
		{[]any{"HELLO", "4"}, "NOPROTO"},
		{[]any{"AUTH", "x"}, "ERR AUTH <password> called without any password configured"},
		{[]any{"SCAN", "x"}, "ERR invalid cursor"},
		{[]any{"SCAN", "0", "COUNT", "0"}, "ERR value is out of range"},
		{[]any{"CLIENT", "NOSUCH"}, "ERR unknown subcommand"},
		// Over the request size limit (4096 bytes): an error reply, and
		// the connection stays usable.
		{[]any{"SADD", k, strings.Repeat("x", 5000)}, "ERR request over the size limit"},
	}
	for _, c := range cases {
		wantErr(t, rc.Do(ctx, c.args...).Err(), c.want)
		// The connection (the pool has one idle) still answers.
		if err := rc.Ping(ctx).Err(); err != nil {
			t.Fatalf("after %v: PING: %v", c.args[0], err)
		}
	}
	if st := rc.PoolStats(); st.TotalConns != 1 {
		t.Fatalf("the errors cost connections: %+v", st)
	}
}

// rawRESP is a plain TCP connection to the RESP port, for requests no
// client library sends.
type rawRESP struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRESP(t testing.TB, addr string) *rawRESP {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawRESP{t, nc, bufio.NewReader(nc)}
}

func (r *rawRESP) send(s string) {
	r.t.Helper()
	if _, err := r.nc.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// line reads one reply line without its CRLF.
func (r *rawRESP) line() string {
	r.t.Helper()
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expectClosed fails with msg if the server sends another line instead
// of closing the connection.
func (r *rawRESP) expectClosed(msg string) {
	r.t.Helper()
	if l, err := r.br.ReadString('\n'); err == nil {
		r.t.Fatalf("%s: %q", msg, l)
	}
}

func (r *rawRESP) expect(want ...string) {
	r.t.Helper()
	for _, w := range want {
		if got := r.line(); !strings.HasPrefix(got, w) {
			r.t.Fatalf("reply %q, want %q", got, w)
		}
	}
}

func TestRESPWire(t *testing.T) {
	ts, _ := startRESP(t, Config{MaxMessage: 1024}, "", 2)
	r := dialRESP(t, ts.Addr("resp"))
	// Inline commands, as from telnet; empty lines are ignored.
	r.send("PING\r\n\r\nECHO  hi\nSADD E(1,1) E(1,2)\r\nSCARD E(1,1)\r\n")
	r.expect("+PONG", "$2", "hi", ":1", ":1")
	// Quoted inline words, as redis-server reads them.
	r.send("ECHO \"a b\\x41\"\r\nSADD 'E(1,9)' \"E(1,3)\"\r\n")
	r.expect("$4", "a bA", ":1")
	// A request split across writes, and several in one write.
	r.send("*2\r\n$4\r\nECHO\r\n$5\r\nhe")
	r.send("llo\r\n*1\r\n$4\r\nPING\r\n")
	r.expect("$5", "hello", "+PONG")
	// Oversized requests, array and inline, are skipped whole; the
	// connection goes on.
	big := strings.Repeat("y", 2000)
	r.send(fmt.Sprintf("*3\r\n$4\r\nSADD\r\n$%d\r\n%s\r\n$3\r\nabc\r\n*1\r\n$4\r\nPING\r\n", len(big), big))
	r.expect("-ERR request over the size limit", "+PONG")
	r.send("*100000\r\n$4\r\nSADD\r\n")
	r.send(strings.Repeat("$1\r\nx\r\n", 99999))
	r.send("PING\r\n")
	r.expect("-ERR request over the size limit", "+PONG")
	// *0 is nothing; a pipeline answers in order.
	r.send("*0\r\n*1\r\n$4\r\nPING\r\n")
	r.expect("+PONG")
	// QUIT answers and closes; nothing after it runs.
	r.send("QUIT\r\nSADD E(1,1) E(1,3)\r\n")
	r.expect("+OK")
	r.expectClosed("a reply after QUIT")
	r2 := dialRESP(t, ts.Addr("resp"))
	r2.send("SCARD E(1,1)\r\n")
	r2.expect(":1")
	// Broken framing is a protocol error: an error reply, then the
	// connection closes.
	r2.send("*1\r\n$x\r\n")
	r2.expect("-ERR Protocol error")
	r2.expectClosed("the connection stayed open after a protocol error")
	// So is an inline quote left open.
	r3 := dialRESP(t, ts.Addr("resp"))
	r3.send("ECHO \"a b\r\n")
	r3.expect("-ERR Protocol error: unbalanced quotes")
	r3.expectClosed("the connection stayed open after unbalanced quotes")
}

func TestRESPServerCommands(t *testing.T) {
	dir := t.TempDir()
	ts, rc := startRESP(t, Config{Token: "s3cret"}, dir, 3)
	ctx := context.Background()
	if got := must(t, rc.Ping(ctx)); got != "PONG" {
		t.Fatalf("PING %q", got)
	}
	if got := must(t, rc.Echo(ctx, "x y")); got != "x y" {
		t.Fatalf("ECHO %q", got)
	}
	if got := call(t, rc.Do(ctx, "PING", "hi").Text); got != "hi" {
		t.Fatalf("PING hi %q", got)
	}
	if err := rc.Do(ctx, "SELECT", "0").Err(); err != nil {
		t.Fatal(err)
	}
	must(t, rc.SAdd(ctx, e(1, 1), e(1, 2), e(1, 3)))
	info := must(t, rc.Info(ctx))
	for _, want := range []string{"# Server", "redis_version:", "# Clients", "connected_clients:1", "# Memory", "used_memory:",
		"# Persistence", "appendfsync:always", "aof_enabled:1", "# Stats", "inserts:2", "# Keyspace", "db0:keys=1,expires=0,avg_ttl=0,pairs=2"} {
		if !strings.Contains(info, want) {
			t.Fatalf("INFO lacks %q:\n%s", want, info)
		}
	}
	if ks := must(t, rc.Info(ctx, "keyspace")); strings.Contains(ks, "# Server") || !strings.Contains(ks, "keys=1") {
		t.Fatalf("INFO keyspace:\n%s", ks)
	}
	cfg := must(t, rc.ConfigGet(ctx, "append*"))
	if cfg["appendonly"] != "yes" || cfg["appendfsync"] != "always" || len(cfg) != 2 {
		t.Fatalf("CONFIG GET append*: %v", cfg)
	}
	if cfg := must(t, rc.ConfigGet(ctx, "maxclients")); cfg["maxclients"] != "1024" {
		t.Fatalf("CONFIG GET maxclients: %v", cfg)
	}
	if n := call(t, rc.Do(ctx, "COMMAND", "COUNT").Int); n != len(respCommands) {
		t.Fatalf("COMMAND COUNT %d", n)
	}
	cmds := must(t, rc.Command(ctx))
	if c := cmds["sadd"]; c == nil || c.Arity != -3 || c.FirstKeyPos != 1 || !slices.Contains(c.Flags, "write") {
		t.Fatalf("COMMAND sadd: %+v", c)
	}
	if c := cmds["type"]; c == nil || c.FirstKeyPos != 1 || c.LastKeyPos != 1 {
		t.Fatalf("COMMAND type: %+v", c)
	}
	if c := cmds["del"]; c == nil || c.FirstKeyPos != 1 || c.LastKeyPos != -1 || c.StepCount != 1 {
		t.Fatalf("COMMAND del: %+v", c)
	}
	if c := cmds["tquery"]; c == nil || c.FirstKeyPos != 0 {
		t.Fatalf("COMMAND tquery: %+v", c)
	}
	if err := rc.Do(ctx, "COMMAND", "DOCS").Err(); err != nil {
		t.Fatal(err)
	}
	if got := call(t, rc.Do(ctx, "COMMAND", "INFO", "smembers", "nosuch").Slice); len(got) != 2 || got[1] != nil {
		t.Fatalf("COMMAND INFO %v", got)
	}
	if err := rc.Do(ctx, "CLIENT", "SETNAME", "tester").Err(); err != nil {
		t.Fatal(err)
	}
	if got := call(t, rc.Do(ctx, "CLIENT", "GETNAME").Text); got != "tester" {
		t.Fatalf("CLIENT GETNAME %q", got)
	}
	if err := rc.Do(ctx, "CLIENT", "SETINFO", "LIB-NAME", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if got := call(t, rc.Do(ctx, "CLIENT", "INFO").Text); !strings.Contains(got, "name=tester") || !strings.Contains(got, "lib-name=x") || !strings.Contains(got, "resp=3") {
		t.Fatalf("CLIENT INFO %q", got)
	}
	before := must(t, rc.LastSave(ctx))

	// SAVE and BGSAVE need AUTH with the token.
	wantErr(t, rc.Save(ctx).Err(), "NOAUTH")
	wantErr(t, rc.Do(ctx, "AUTH", "wrong").Err(), "WRONGPASS")
	admin := redisClient(t, ts, 2, "s3cret")
	if err := admin.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if st := ts.st.Stats(); st.Checkpoints.Count != 1 {
		t.Fatalf("SAVE: %d checkpoints", st.Checkpoints.Count)
	}
	if after := must(t, admin.LastSave(ctx)); after < before {
		t.Fatalf("LASTSAVE went back: %d < %d", after, before)
	}
	if got := must(t, admin.BgSave(ctx)); got != "Background saving started" {
		t.Fatalf("BGSAVE %q", got)
	}
	// FLUSHALL is off without the server's flag, token or not.
	wantErr(t, admin.FlushAll(ctx).Err(), "NOPERM FLUSHALL is disabled")

	// HELLO, by hand: the reply is a map with the protocol version.
	hello := must(t, rc.Do(ctx, "HELLO", "3")).(map[any]any)
	if hello["proto"] != int64(3) || hello["server"] != "cidstore" {
		t.Fatalf("HELLO 3: %v", hello)
	}

	// QUIT closes the connection; the pool dials another.
	r := dialRESP(t, ts.Addr("resp"))
	r.send("QUIT\r\n")
	r.expect("+OK")
	if got := must(t, rc.SCard(ctx, e(1, 1))); got != 2 {
		t.Fatalf("SCARD %d", got)
	}
}

func TestRESPFlushAll(t *testing.T) {
	ts, _ := startRESP(t, Config{Token: "tok", AllowFlushAll: true}, "", 2)
	ctx := context.Background()
	anon := redisClient(t, ts, 2, "")
	wantErr(t, anon.FlushAll(ctx).Err(), "NOAUTH")
	rc := redisClient(t, ts, 2, "tok")
	for i := range 30 {
		must(t, rc.SAdd(ctx, e(1, uint64(i+1)), e(2, 1), e(2, 2)))
	}
	call(t, rc.Do(ctx, "TADD", e(1, 1), e(1, 2), e(1, 3)).Int)
	if err := rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n := must(t, rc.DBSize(ctx)); n != 0 || ts.st.TripleCount() != 0 {
		t.Fatalf("after FLUSHALL: %d keys, %d triples", n, ts.st.TripleCount())
	}
}

// TestRESPPipeline: a pipeline's replies come in order, reads see the
// writes before them, and consecutive writes share group commits.
func TestRESPPipeline(t *testing.T) {
	ts, rc := startRESP(t, Config{}, t.TempDir(), 2)
	ctx := context.Background()
	const n = 500
	fsyncs := ts.st.Stats().WAL.Fsyncs
	// The pipeline holds failing commands, so Pipelined returns the first
	// error; each command's own result is checked below.
	cmds, _ := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			k := e(3, uint64(i%50+1))
			p.SAdd(ctx, k, e(4, uint64(i+1)))
			if i%100 == 99 {
				p.SCard(ctx, k)                   // a read between writes
				p.SAdd(ctx, k, e(4, uint64(i+1))) // not new
				p.Do(ctx, "NOSUCH")               // an error in the middle
				p.SAdd(ctx, k, "bad")
			}
		}
		return nil
	})
	j := 0
	for i := range n {
		if got := cmds[j].(*redis.IntCmd).Val(); got != 1 {
			t.Fatalf("reply %d (SADD %d): %d, err %v", j, i, got, cmds[j].Err())
		}
		j++
		if i%100 == 99 {
			if got := cmds[j].(*redis.IntCmd).Val(); got != int64((i+1)/50) {
				t.Fatalf("SCARD after %d SADDs: %d", i+1, got)
			}
			if got := cmds[j+1].(*redis.IntCmd).Val(); got != 0 || cmds[j+1].Err() != nil {
				t.Fatalf("repeated SADD: %d, %v", got, cmds[j+1].Err())
			}
			wantErr(t, cmds[j+2].Err(), "ERR unknown command")
			wantErr(t, cmds[j+3].Err(), "ERR invalid CID")
			j += 4
		}
	}
	if j != len(cmds) {
		t.Fatalf("%d replies for %d commands", j, len(cmds))
	}
	st := ts.st.Stats()
	if st.Pairs != n {
		t.Fatalf("%d pairs, want %d", st.Pairs, n)
	}
	// Under SyncAlways every reply waited for an fsync, but the writes of
	// one read from the socket shared one: at most one per run of writes
	// the reads and errors split (the pipeline may arrive in several
	// reads, each its own runs).
	if d := st.WAL.Fsyncs - fsyncs; d == 0 || d > n/2 {
		t.Fatalf("%d fsyncs for %d pipelined writes", d, n)
	}
	if st.WAL.DurableLSN != st.WAL.LastLSN {
		t.Fatalf("replies before durability: durable LSN %d of %d", st.WAL.DurableLSN, st.WAL.LastLSN)
	}
}

func TestRESPMulti(t *testing.T) {
	ts, rc := startRESP(t, Config{}, "", 2)
	ctx := context.Background()
	k, k2 := e(1, 1), e(1, 2)
	must(t, rc.SAdd(ctx, k2, e(2, 1)))
	batches := ts.st.Stats().Ops.Batches
	cmds, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k, e(2, 1), e(2, 2))
		p.SRem(ctx, k, e(2, 1), e(2, 9))
		p.SAdd(ctx, k, e(2, 2))
		p.Del(ctx, k2, e(9, 9))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, c := range cmds {
		got = append(got, c.(*redis.IntCmd).Val())
	}
	if !slices.Equal(got, []int64{2, 1, 0, 1}) {
		t.Fatalf("EXEC replies %v", got)
	}
	if d := ts.st.Stats().Ops.Batches - batches; d != 1 {
		t.Fatalf("the transaction took %d batches, want 1", d)
	}
	if m := must(t, rc.SMembers(ctx, k)); !slices.Equal(m, []string{e(2, 2)}) {
		t.Fatalf("SMEMBERS %v", m)
	}

	// A queued command with an error discards the transaction at EXEC.
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k, e(2, 3))
		p.SAdd(ctx, k, "bad")
		return nil
	})
	wantErr(t, err, "EXECABORT")
	// Reads are refused inside MULTI.
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k, e(2, 3))
		p.SMembers(ctx, k)
		return nil
	})
	wantErr(t, err, "EXECABORT")
	if n := must(t, rc.SCard(ctx, k)); n != 1 {
		t.Fatalf("an aborted transaction changed the store: SCARD %d", n)
	}

	// By hand: DISCARD, nested MULTI, an empty transaction.
	r := dialRESP(t, ts.Addr("resp"))
	r.send("MULTI\r\nSADD E(1,1) E(2,3)\r\nDISCARD\r\nSCARD E(1,1)\r\n")
	r.expect("+OK", "+QUEUED", "+OK", ":1")
	r.send("MULTI\r\nMULTI\r\nEXEC\r\n")
	r.expect("+OK", "-ERR MULTI calls can not be nested", "*0")
}

// TestRESPAtomicMulti: a transaction is one batch, so a SCAN page (one
// point-in-time view of the keys) holds all of its keys or none. (Point
// reads of different keys may see a batch partly applied: see the store's
// ApplyBatch.)
func TestRESPAtomicMulti(t *testing.T) {
	_, rc := startRESP(t, Config{}, "", 2)
	ctx := context.Background()
	const txns = 200
	done := make(chan error, 1)
	go func() {
		for i := range uint64(txns) {
			_, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.SAdd(ctx, e(1, 2*i+1), e(2, 1))
				p.SAdd(ctx, e(1, 2*i+2), e(2, 1))
				return nil
			})
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		keys, cursor := must2(t)(rc.Scan(ctx, 0, "", 2*txns+10).Result())
		if cursor != 0 || len(keys)%2 != 0 {
			t.Fatalf("SCAN saw %d keys (cursor %d): half a transaction", len(keys), cursor)
		}
	}
}

func TestRESPClientLimit(t *testing.T) {
	ts, rc := startRESP(t, Config{MaxConns: 1, ZMQ: "", Push: "", Router: "", Pub: ""}, "", 2)
	ctx := context.Background()
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r := dialRESP(t, ts.Addr("resp"))
	r.expect("-ERR max number of clients reached")
	r.expectClosed("a connection over the limit stayed open")
	rc.Close()
	// The slot is free again once the first client leaves.
	for range 100 {
		r := dialRESP(t, ts.Addr("resp"))
		r.send("PING\r\n")
		if l, err := r.br.ReadString('\n'); err == nil && l == "+PONG\r\n" {
			return
		}
		time.Sleep(20 * time.Millisecond) // waiting for the server to notice the close
	}
	t.Fatal("the connection slot was not freed")
}

// TestRESPErrorCodes: every Code has its Redis error form.
func TestRESPErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&Error{Code: CodeBadRequest, Msg: "x"}, "ERR x"},
		{&Error{Code: CodeRedirect, Msg: "x", Leader: map[string]string{"resp": "127.0.0.1:6380"}}, "MOVED 0 127.0.0.1:6380"},
		{&Error{Code: CodeRedirect, Msg: "x", Leader: map[string]string{"zmq": "tcp://127.0.0.1:5555"}}, "ERR x"},
		{&Error{Code: CodeTooLarge, Msg: "x"}, "ERR x"},
		{&Error{Code: CodeUnauthorized, Msg: "x"}, "NOAUTH x"},
		{&Error{Code: CodeForbidden, Msg: "x"}, "NOPERM x"},
		{&Error{Code: CodeInternal, Msg: "x"}, "ERR internal error: x"},
		{fmt.Errorf("wrapped: %w", store.ErrReadOnly), "READONLY"},
		{store.ErrClosed, "UNAVAILABLE"},
		{errors.New("boom"), "ERR internal error: boom"},
	}
	for _, c := range cases {
		if got := respError(c.err); !strings.HasPrefix(got, c.want) {
			t.Errorf("respError(%v) = %q, want %q...", c.err, got, c.want)
		}
	}
}

// failingSave is a persistent-looking Backend whose checkpoints fail
// while fail is set.
type failingSave struct {
	Backend
	fail atomic.Bool
}

func (b *failingSave) Stats() store.Stats {
	st := b.Backend.Stats()
	st.Persistent = true
	return st
}

func (b *failingSave) Checkpoint(context.Context) error {
	if b.fail.Load() {
		return errors.New("disk full")
	}
	return nil
}

// A BGSAVE that fails says so in INFO's rdb_last_bgsave_status, and the
// next one that succeeds clears it.
func TestRESPBgSaveStatus(t *testing.T) {
	fb := &failingSave{Backend: openMemStore(t)}
	ts := startServerWith(t, Config{RESP: "127.0.0.1:0", Token: "tok"}, nil, fb)
	rc := redisClient(t, ts, 2, "tok")
	ctx := context.Background()
	status := func() string {
		t.Helper()
		ts.bg.Wait()
		info := must(t, rc.Info(ctx, "persistence"))
		_, s, _ := strings.Cut(info, "rdb_last_bgsave_status:")
		s, _, _ = strings.Cut(s, "\r\n")
		return s
	}
	fb.fail.Store(true)
	must(t, rc.BgSave(ctx))
	if s := status(); s != "err" {
		t.Fatalf("after a failed BGSAVE: rdb_last_bgsave_status:%s", s)
	}
	fb.fail.Store(false)
	must(t, rc.BgSave(ctx))
	if s := status(); s != "ok" {
		t.Fatalf("after a BGSAVE that worked: rdb_last_bgsave_status:%s", s)
	}
}

// Each RESP error reply counts once in the server's error and request
// counters: a command the executor refused, and one that never reached it.
func TestRESPErrorCount(t *testing.T) {
	ts, rc := startRESP(t, Config{}, "", 2)
	ctx := context.Background()
	must(t, rc.Ping(ctx))
	total, failed := ts.metrics.total.Load(), ts.metrics.failed.Load()
	zero := cid.Zero.EString()
	wantErr(t, rc.SMembers(ctx, zero).Err(), "ERR lookup: the zero CID is not a key")
	wantErr(t, rc.Do(ctx, "NOSUCH").Err(), "ERR unknown command")
	if d := ts.metrics.failed.Load() - failed; d != 2 {
		t.Errorf("two error replies counted as %d errors", d)
	}
	if d := ts.metrics.total.Load() - total; d != 2 {
		t.Errorf("two requests counted as %d", d)
	}
}
