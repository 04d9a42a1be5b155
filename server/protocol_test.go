package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/store"
	"github.com/go-zeromq/zmq4"
	"github.com/vmihailenco/msgpack/v5"
)

type m = map[string]any

// step is one request of a protocol test and what its reply must hold.
type step struct {
	name string
	req  any            // a map, or raw []byte
	code int            // 0: success; else the error_code
	want map[string]any // fields the reply must have (success only)
}

// runSteps sends every step, in order, over c.
func runSteps(t *testing.T, c *client, steps []step) {
	t.Helper()
	for _, s := range steps {
		r := c.call(s.req)
		if s.code != 0 {
			if r["status"] != "error" || toInt(r["error_code"]) != int64(s.code) || r["version"] != "1.0" {
				t.Errorf("%s: reply %v, want error %d", s.name, r, s.code)
			} else if msg, _ := r["error_msg"].(string); msg == "" {
				t.Errorf("%s: error without a message", s.name)
			}
			continue
		}
		if r["status"] != "ok" || r["version"] != "1.0" {
			t.Errorf("%s: reply %v, want ok", s.name, r)
			continue
		}
		for k, want := range s.want {
			if got := r[k]; !sameValue(got, want) {
				t.Errorf("%s: %s = %#v, want %#v (reply %v)", s.name, k, got, want, r)
			}
		}
	}
}

// sameValue compares a decoded msgpack value with an expectation,
// treating every integer type alike.
func sameValue(got, want any) bool {
	if wi, ok := want.(int); ok {
		return toInt(got) == int64(wi)
	}
	return reflect.DeepEqual(got, want)
}

// triples of the protocol tests.
const (
	cS  = "E(1,2,3,4)"
	cP  = "E(5,6,7,8)"
	cO1 = "E(9,10,11,12)"
	cO2 = "E(18446744073709551615,0,0,1)"
)

func results(rows ...[]any) []any { return append([]any{}, anySlice(rows)...) }

func anySlice[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func row(s, p, o string) []any { return []any{s, p, o} }

// TestCommands sends every command, alias and CID form over a zmq4 REQ
// client and checks each reply.
func TestCommands(t *testing.T) {
	ts := startServer(t, Config{Limits: Limits{QueryLimit: 3}}, "")
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	hexKey := strings.Repeat("0", 62) + "ab"
	runSteps(t, c, []step{
		{"ping", m{"command": "ping"}, 0, nil},
		{"PING alias", m{"op_code": "PING"}, 0, nil},
		{"Ping, mixed case", m{"command": "Ping"}, 0, nil},
		{"command wins over op_code", m{"command": "ping", "op_code": "frobnicate"}, 0, nil},

		// Triples in every CID form.
		{"insert", m{"command": "insert", "s": cS, "p": cP, "o": cO1}, 0, m{"inserted": 1}},
		{"insert again", m{"command": "insert", "s": cS, "p": cP, "o": cO1}, 0, m{"inserted": 0}},
		{"INSERT, word lists (uint64)", m{"op_code": "INSERT", "s": []uint64{1, 2, 3, 4}, "p": []uint64{5, 6, 7, 8}, "o": []uint64{1<<64 - 1, 0, 0, 1}}, 0, m{"inserted": 1}},
		{"insert, word lists (int64)", m{"command": "insert", "s": []int64{1, 2, 3, 4}, "p": []int64{5, 6, 7, 8}, "o": []int64{9, 10, 11, 12}}, 0, m{"inserted": 0}},
		{"batch_insert, maps", m{"command": "batch_insert", "triples": []any{
			m{"s": "E(1,1)", "p": "E(2,2)", "o": "E(3,3)"},
			m{"s": "E(0,0,1,1)", "p": "E(0,0,2,2)", "o": "E(0,0,3,3)"}, // the same triple
			m{"s": []uint64{1, 1}, "p": hexKey, "o": bytes.Repeat([]byte{7}, 32)},
		}}, 0, m{"inserted": 2}},
		{"BATCH_INSERT, arrays", m{"op_code": "BATCH_INSERT", "triples": []any{
			[]any{"E(4,4)", "E(2,2)", "E( 5 , 5 )"},
			[]any{"E(0004,4)", "E(2,2)", "E(6,6)"},
		}}, 0, m{"inserted": 2}},
		{"batch_insert, empty", m{"command": "batch_insert", "triples": []any{}}, 0, m{"inserted": 0}},
		{"batch_insert, extra fields ignored", m{"command": "batch_insert", "id": 7, "meta": m{"a": []any{1, 2}}, "triples": []any{m{"s": "E(8,8)", "p": "E(8,8)", "o": "E(8,8)", "w": 1.5}}}, 0, m{"inserted": 1}},

		// The eight query patterns, and limits.
		{"query spo", m{"command": "query", "s": cS, "p": cP, "o": cO1}, 0, m{"count": 1, "truncated": false, "results": results(row(cS, cP, cO1))}},
		{"query sp?", m{"command": "query", "s": cS, "p": cP}, 0, m{"count": 2, "results": results(row(cS, cP, cO1), row(cS, cP, cO2))}},
		{"query s??", m{"command": "query", "s": cS, "p": nil, "o": nil}, 0, m{"count": 2}},
		{"query ?po", m{"command": "query", "p": cP, "o": cO2}, 0, m{"count": 1, "results": results(row(cS, cP, cO2))}},
		{"query ?p?", m{"command": "QUERY", "p": "E(2,2)"}, 0, m{"count": 3}},
		{"query ??o", m{"command": "query", "o": "E(3,3)"}, 0, m{"count": 1, "results": results(row("E(0,0,1,1)", "E(0,0,2,2)", "E(0,0,3,3)"))}},
		{"query s?o", m{"command": "query", "s": "E(4,4)", "o": "E(6,6)"}, 0, m{"count": 1}},
		{"query ??? (default limit 3)", m{"command": "query"}, 0, m{"count": 3, "truncated": true}},
		{"query ??? limit 100", m{"command": "query", "limit": 100}, 0, m{"count": 7, "truncated": false}},
		{"query ??? limit 2", m{"command": "query", "limit": uint8(2)}, 0, m{"count": 2, "truncated": true}},
		{"query, no match", m{"command": "query", "s": "E(99,99)"}, 0, m{"count": 0, "results": []any{}, "truncated": false}},

		// Triple deletes.
		{"delete", m{"command": "delete", "s": cS, "p": cP, "o": cO2}, 0, m{"deleted": 1}},
		{"DELETE absent", m{"op_code": "DELETE", "s": cS, "p": cP, "o": cO2}, 0, m{"deleted": 0}},
		{"batch_delete", m{"command": "batch_delete", "triples": []any{[]any{cS, cP, cO1}, m{"s": "E(8,8)", "p": "E(8,8)", "o": "E(8,8)"}}}, 0, m{"deleted": 2}},
		{"BATCH_DELETE", m{"op_code": "BATCH_DELETE", "triples": []any{[]any{"E(4,4)", "E(2,2)", "E(5,5)"}}}, 0, m{"deleted": 1}},
		{"query after deletes", m{"command": "query", "s": cS}, 0, m{"count": 0}},

		// Pairs.
		{"insert pair", m{"command": "insert", "key": "E(7,7)", "value": "E(0,1)"}, 0, nil},
		{"insert pair, hex and raw", m{"command": "insert", "key": []uint64{0, 0, 7, 7}, "value": strings.Repeat("0", 63) + "2"}, 0, nil},
		{"batch_insert entries", m{"command": "batch_insert", "entries": []any{m{"key": "E(7,7)", "value": "E(0,3)"}, []any{"E(7,7)", "E(0,4)"}, m{"key": "E(9,9)", "value": "E(0,1)"}}}, 0, nil},
		{"lookup", m{"command": "lookup", "key": "E(7,7)"}, 0, m{"count": 4, "results": []any{"E(0,0,0,1)", "E(0,0,0,2)", "E(0,0,0,3)", "E(0,0,0,4)"}}},
		{"LOOKUP by s", m{"op_code": "LOOKUP", "s": "E(9,9)"}, 0, m{"count": 1}},
		{"query by key is a lookup", m{"command": "query", "key": "E(7,7)"}, 0, m{"count": 4}},
		{"lookup absent", m{"command": "lookup", "key": "E(1,2,3,99)"}, 0, m{"count": 0, "results": []any{}}},
		{"delete pair", m{"command": "delete", "key": "E(7,7)", "value": "E(0,1)"}, 0, nil},
		{"batch_delete entries", m{"command": "batch_delete", "entries": []any{m{"key": "E(7,7)", "value": "E(0,2)"}, []any{"E(7,7)", "E(0,99)"}}}, 0, nil},
		{"lookup after deletes", m{"command": "lookup", "key": "E(7,7)"}, 0, m{"count": 2}},
		{"delete key (no value)", m{"command": "delete", "key": "E(7,7)"}, 0, nil},
		{"batch_delete key (nil value, array)", m{"command": "batch_delete", "entries": []any{m{"key": "E(9,9)", "value": nil}, []any{"E(10,10)"}}}, 0, nil},
		{"lookup deleted keys", m{"command": "lookup", "key": "E(9,9)"}, 0, m{"count": 0}},
		{"metrics", m{"command": "metrics"}, 0, m{"triples": 3, "keys": 0, "requests": 41}},
		{"METRICS", m{"op_code": "METRICS"}, 0, nil},
	})
}

// TestErrors sends malformed input of every kind: each gets an error
// reply with its code and the connection goes on.
func TestErrors(t *testing.T) {
	ts := startServer(t, Config{Limits: Limits{MaxBatch: 4}}, "")
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	mp := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	deep := []byte{0x81, 0xa1, 'x'} // {"x": [[[[...]]]]}, too deep to skip
	for range 1000 {
		deep = append(deep, 0x91)
	}
	deep = append(deep, 0xc0)
	spo := func(s any) m { return m{"command": "insert", "s": s, "p": "E(1,1)", "o": "E(1,1)"} }
	steps := []step{
		{"malformed msgpack", []byte{0xc1}, 400, nil},
		{"empty message", []byte{}, 400, nil},
		{"truncated map", []byte{0x82, 0xa7, 'c', 'o', 'm', 'm', 'a', 'n', 'd'}, 400, nil},
		{"truncated string", []byte{0x81, 0xa7, 'c', 'o', 'm', 'm', 'a', 'n', 'd', 0xdb, 0xff, 0xff, 0xff, 0xff}, 400, nil},
		{"an array, not a map", mp([]int{1, 2}), 400, nil},
		{"a string, not a map", mp("insert"), 400, nil},
		{"nil", mp(nil), 400, nil},
		{"trailing bytes", append(mp(m{"command": "ping"}), 0), 400, nil},
		{"no command", mp(m{"s": "E(1,1)"}), 400, nil},
		{"command not a string", mp(m{"command": 7}), 400, nil},
		{"command too long", mp(m{"command": strings.Repeat("x", 100)}), 400, nil},
		{"unknown command", mp(m{"command": "frobnicate"}), 400, nil},
		{"nested too deep", deep, 400, nil},
		{"bad CID: three words", mp(spo("E(1,2,3)")), 400, nil},
		{"bad CID: five words", mp(spo("E(1,2,3,4,5)")), 400, nil},
		{"bad CID: not a number", mp(spo("E(1,x)")), 400, nil},
		{"bad CID: overflow", mp(spo("E(18446744073709551616,1)")), 400, nil},
		{"bad CID: no E", mp(spo("(1,2)")), 400, nil},
		{"bad CID: short hex", mp(spo("abcd")), 400, nil},
		{"bad CID: bad hex", mp(spo(strings.Repeat("g", 64))), 400, nil},
		{"bad CID: too long", mp(spo("E(" + strings.Repeat("1", 500) + ")")), 400, nil},
		{"bad CID: list of 3", mp(spo([]int{1, 2, 3})), 400, nil},
		{"bad CID: negative word", mp(spo([]int{1, -2})), 400, nil},
		{"bad CID: float word", mp(spo([]any{1.5, 2})), 400, nil},
		{"bad CID: a map", mp(spo(m{"a": 1})), 400, nil},
		{"bad CID: a number", mp(spo(17)), 400, nil},
		{"bad CID: 31 raw bytes", mp(spo(bytes.Repeat([]byte{1}, 31))), 400, nil},
		{"zero CID", mp(spo("E(0,0,0,0)")), 400, nil},
		{"zero CID in a batch", mp(m{"command": "batch_insert", "triples": []any{[]any{"E(1,1)", "E(1,1)", "E(0,0)"}}}), 400, nil},
		{"missing o", mp(m{"command": "insert", "s": "E(1,1)", "p": "E(1,1)"}), 400, nil},
		{"nil p", mp(m{"command": "insert", "s": "E(1,1)", "p": nil, "o": "E(1,1)"}), 400, nil},
		{"insert: nothing", mp(m{"command": "insert"}), 400, nil},
		{"insert pair without value", mp(m{"command": "insert", "key": "E(1,1)"}), 400, nil},
		{"delete: nothing", mp(m{"command": "delete"}), 400, nil},
		{"batch_insert without triples", mp(m{"command": "batch_insert"}), 400, nil},
		{"batch_insert with both", mp(m{"command": "batch_insert", "triples": []any{}, "entries": []any{}}), 400, nil},
		{"triples not an array", mp(m{"command": "batch_insert", "triples": "E(1,1)"}), 400, nil},
		{"triple not a map", mp(m{"command": "batch_insert", "triples": []any{"E(1,1)"}}), 400, nil},
		{"triple missing p, o", mp(m{"command": "batch_insert", "triples": []any{m{"s": "E(1,1)"}}}), 400, nil},
		{"triple of 2", mp(m{"command": "batch_insert", "triples": []any{[]any{"E(1,1)", "E(1,1)"}}}), 400, nil},
		{"entry without key", mp(m{"command": "batch_insert", "entries": []any{m{"value": "E(1,1)"}}}), 400, nil},
		{"insert entry without value", mp(m{"command": "batch_insert", "entries": []any{m{"key": "E(1,1)"}}}), 400, nil},
		{"entry of 3", mp(m{"command": "batch_insert", "entries": []any{[]any{"E(1,1)", "E(1,1)", "E(1,1)"}}}), 400, nil},
		{"batch over MaxBatch", mp(m{"command": "batch_insert", "triples": slices.Repeat([]any{[]any{"E(1,1)", "E(1,1)", "E(1,1)"}}, 5)}), 413, nil},
		{"entries over MaxBatch", mp(m{"command": "batch_delete", "entries": slices.Repeat([]any{[]any{"E(1,1)"}}, 5)}), 413, nil},
		{"declared array over MaxBatch", []byte{0x82, 0xa7, 'c', 'o', 'm', 'm', 'a', 'n', 'd', 0xac, 'b', 'a', 't', 'c', 'h', '_', 'i', 'n', 's', 'e', 'r', 't', 0xa7, 't', 'r', 'i', 'p', 'l', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, 413, nil},
		{"lookup without key", mp(m{"command": "lookup"}), 400, nil},
		{"lookup of the zero CID", mp(m{"command": "lookup", "key": "E(0,0)"}), 400, nil},
		{"negative limit", mp(m{"command": "query", "limit": -1}), 400, nil},
		{"limit not a number", mp(m{"command": "query", "limit": "10"}), 400, nil},
		{"still up", mp(m{"command": "ping"}), 0, nil},
	}
	runSteps(t, c, steps)
	if st := ts.st.Stats(); st.Keys != 0 || ts.currentBackend().TripleCount() != 0 {
		t.Fatalf("a rejected request changed the store: %d keys, %d triples", st.Keys, ts.currentBackend().TripleCount())
	}
}

// TestReadOnly: a store that can no longer write answers 503.
func TestReadOnly(t *testing.T) {
	ts := startServer(t, Config{}, t.TempDir())
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(m{"command": "insert", "key": "E(1,1)", "value": "E(1,1)"}))
	ts.st.Close() // every later write fails as the store is closed
	failed(t, c.call(m{"command": "insert", "key": "E(1,1)", "value": "E(1,2)"}), 503)
	ok(t, c.call(m{"command": "ping"}))
}

func TestLookupOp(t *testing.T) {
	for o := OpPing; o < numOps; o++ {
		for _, name := range []string{o.String(), strings.ToUpper(o.String())} {
			if got, ok := LookupOp(name); !ok || got != o {
				t.Errorf("LookupOp(%q) = %v, %v", name, got, ok)
			}
		}
	}
	if _, ok := LookupOp("nope"); ok {
		t.Error(`LookupOp("nope") found something`)
	}
	if Op(0).String() != "unknown" || numOps.String() != "unknown" {
		t.Error("String of an invalid Op")
	}
	if !OpBatchDelete.Mutates() || OpQuery.Mutates() {
		t.Error("Mutates")
	}
}

func TestSplitEnvelope(t *testing.T) {
	b := []byte("body")
	tests := []struct {
		frames [][]byte
		env    int
		body   bool
	}{
		{[][]byte{b}, 0, true},
		{[][]byte{{}, b}, 1, true},
		{[][]byte{[]byte("id"), {}, b}, 2, true},
		{[][]byte{{}}, 1, false},
		{[][]byte{{}, b, b}, 1, false},
		{[][]byte{b, b}, 0, false},
		{nil, 0, false},
	}
	for i, tt := range tests {
		env, body := splitEnvelope(tt.frames)
		if len(env) != tt.env || (body != nil) != tt.body {
			t.Errorf("%d: envelope %d frames, body %q", i, len(env), body)
		}
	}
}

// TestTripleBatchLimit: a triple batch is bounded by the store's
// MaxTripleBatch as well as by Limits.MaxBatch.
func TestTripleBatchLimit(t *testing.T) {
	lim := Limits{}.withDefaults()
	if lim.batchLimit(true) != store.MaxTripleBatch || lim.batchLimit(false) != store.MaxBatch {
		t.Fatalf("limits %d, %d", lim.batchLimit(true), lim.batchLimit(false))
	}
	md := newMsgDecoder(Limits{})
	var c Command
	// A declared array of MaxTripleBatch+1 triples is refused before any
	// is read.
	b := []byte("\x82\xa7command\xacbatch_insert\xa7triples\xdd")
	b = binary.BigEndian.AppendUint32(b, store.MaxTripleBatch+1)
	if err := md.decode(b, &c); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("decode = %v, want 413", err)
	}
}
