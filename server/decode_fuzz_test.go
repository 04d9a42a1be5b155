package server

import (
	"reflect"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
	"github.com/vmihailenco/msgpack/v5"
)

// FuzzDecode feeds arbitrary bytes to the request decoder. It must never
// panic; a request it accepts must be within the limits, and encoding the
// command back as a request and decoding that must give the same command.
// The seed corpus (testdata/fuzz/FuzzDecode) holds a request of every
// command and CID form; scripts/fuzz runs it for longer.
func FuzzDecode(f *testing.F) {
	for _, req := range []any{
		m{"command": "ping"},
		m{"command": "batch_insert", "triples": []any{m{"s": "E(1,2,3,4)", "p": "E(1,2)", "o": []uint64{1, 2, 3, 4}}, []any{"E(1,1)", "E(2,2)", "E(3,3)"}}},
		m{"op_code": "BATCH_DELETE", "entries": []any{m{"key": "E(1,1)", "value": nil}, []any{"E(1,1)", "E(2,2)"}}},
		m{"command": "query", "p": "00000000000000000000000000000000000000000000000000000000000000ab", "limit": 5},
		m{"command": "lookup", "key": []int64{1, 2}},
		m{"command": "delete", "key": []byte("0123456789abcdef0123456789abcdef")},
	} {
		b, err := msgpack.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	const maxBatch = 64
	dec := newMsgDecoder(Limits{MaxBatch: maxBatch})
	again := newMsgDecoder(Limits{MaxBatch: maxBatch})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Command
		err := dec.decode(b, &c)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("decode error %T %v is not an *Error", err, err)
			}
			return
		}
		if c.Op == 0 || c.Op >= numOps || c.Items() > maxBatch || (len(c.Triples) > 0 && len(c.Pairs) > 0) {
			t.Fatalf("decoded an invalid command %+v", c)
		}
		for _, p := range c.Pairs {
			if p.Kind < store.OpInsert || p.Kind > store.OpDeleteKey {
				t.Fatalf("pair of kind %d", p.Kind)
			}
		}
		var back Command
		if err := again.decode(encodeRequest(t, &c), &back); err != nil {
			t.Fatalf("the re-encoded %+v does not decode: %v", c, err)
		}
		if !sameCommand(&c, &back) {
			t.Fatalf("round trip: %+v became %+v", c, back)
		}
	})
}

// encodeRequest writes c as a msgpack request in canonical form: CIDs as
// hex, triples and pairs as arrays.
func encodeRequest(t *testing.T, c *Command) []byte {
	hex := func(x cid.CID) string { return x.String() }
	req := m{"command": c.Op.String()}
	switch c.Op {
	case OpInsert, OpDelete, OpBatchInsert, OpBatchDelete:
		single := c.Op == OpInsert || c.Op == OpDelete
		switch {
		case single && len(c.Triples) == 1:
			t := c.Triples[0]
			req["s"], req["p"], req["o"] = hex(t.S), hex(t.P), hex(t.O)
		case single:
			p := c.Pairs[0]
			req["key"] = hex(p.Key)
			if p.Kind != store.OpDeleteKey {
				req["value"] = hex(p.Value)
			}
		case len(c.Pairs) > 0:
			var es []any
			for _, p := range c.Pairs {
				e := []any{hex(p.Key)}
				if p.Kind != store.OpDeleteKey {
					e = append(e, hex(p.Value))
				}
				es = append(es, e)
			}
			req["entries"] = es
		default:
			ts := []any{}
			for _, t := range c.Triples {
				ts = append(ts, []any{hex(t.S), hex(t.P), hex(t.O)})
			}
			req["triples"] = ts
		}
	case OpQuery:
		for name, x := range map[string]cid.CID{"s": c.Pattern.S, "p": c.Pattern.P, "o": c.Pattern.O} {
			if !x.IsZero() {
				req[name] = hex(x)
			}
		}
		if c.Limit != 0 {
			req["limit"] = c.Limit
		}
	case OpLookup:
		req["key"] = hex(c.Key)
	}
	b, err := msgpack.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameCommand(a, b *Command) bool {
	norm := func(c *Command) Command {
		x := *c
		if len(x.Triples) == 0 {
			x.Triples = nil
		}
		if len(x.Pairs) == 0 {
			x.Pairs = nil
		}
		return x
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
