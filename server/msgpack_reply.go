package server

import (
	"bytes"

	"github.com/cidstore/cidstore/cid"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// msgEncoder encodes replies and notifications (see msgpack.go for their
// shape). It is reused and not safe for concurrent use; the bytes it
// returns are valid until its next call. Writes go to a bytes.Buffer,
// which cannot fail, so the encoder's errors are not checked.
type msgEncoder struct {
	buf bytes.Buffer
	e   *msgpack.Encoder
}

func newMsgEncoder() *msgEncoder {
	me := &msgEncoder{}
	me.e = msgpack.NewEncoder(&me.buf)
	return me
}

func (me *msgEncoder) start(fields int) {
	me.buf.Reset()
	_ = me.e.EncodeMapLen(fields)
}

func (me *msgEncoder) str(k, v string) {
	_ = me.e.EncodeString(k)
	_ = me.e.EncodeString(v)
}

func (me *msgEncoder) int(k string, v int64) {
	_ = me.e.EncodeString(k)
	_ = me.e.EncodeInt(v)
}

func (me *msgEncoder) bool(k string, v bool) {
	_ = me.e.EncodeString(k)
	_ = me.e.EncodeBool(v)
}

// cid encodes c as a msgpack string in the "E(a,b,c,d)" form, without
// allocating: the header by hand, as EncodeString would write it (fixstr
// or str8; the form is 10 to 86 bytes), then the text. The encoder does
// not buffer, so writing to buf beside it keeps the order.
func (me *msgEncoder) cid(c cid.CID) {
	var tmp [4 + 4*20 + 3]byte
	s := appendE(tmp[:0], c)
	if len(s) < 32 {
		me.buf.WriteByte(msgpcode.FixedStrLow | byte(len(s)))
	} else {
		me.buf.WriteByte(msgpcode.Str8)
		me.buf.WriteByte(byte(len(s)))
	}
	me.buf.Write(s)
}

// result encodes the reply to a command that succeeded.
func (me *msgEncoder) result(r *Result) []byte {
	switch r.Op {
	case OpInsert, OpBatchInsert, OpDelete, OpBatchDelete:
		if r.Changed < 0 {
			me.start(2)
			break
		}
		me.start(3)
		name := "inserted"
		if r.Op == OpDelete || r.Op == OpBatchDelete {
			name = "deleted"
		}
		me.int(name, int64(r.Changed))
	case OpQuery:
		me.start(5)
		_ = me.e.EncodeString("results")
		_ = me.e.EncodeArrayLen(len(r.Triples))
		for _, t := range r.Triples {
			_ = me.e.EncodeArrayLen(3)
			me.cid(t.S)
			me.cid(t.P)
			me.cid(t.O)
		}
		me.int("count", int64(len(r.Triples)))
		me.bool("truncated", r.Truncated)
	case OpLookup:
		me.start(4)
		_ = me.e.EncodeString("results")
		_ = me.e.EncodeArrayLen(len(r.Values))
		for _, v := range r.Values {
			me.cid(v)
		}
		me.int("count", int64(len(r.Values)))
	case OpMetrics:
		me.start(2 + len(r.Metrics))
		for _, m := range r.Metrics {
			me.int(m.Name, m.Value)
		}
	default:
		me.start(2)
	}
	me.str("status", "ok")
	me.str("version", apiVersion)
	return me.buf.Bytes()
}

// failure encodes an error reply. A redirect (CodeRedirect) also
// carries "leader": the leader's address for the endpoint the request
// came in on (endpoint: "zmq" or "router"), when the leader published one.
func (me *msgEncoder) failure(e *Error, endpoint string) []byte {
	leader := ""
	if e.Code == CodeRedirect {
		leader = e.Leader[endpoint]
	}
	if leader != "" {
		me.start(5)
		me.str("leader", leader)
	} else {
		me.start(4)
	}
	me.str("status", "error")
	me.int("error_code", int64(e.Code))
	me.str("error_msg", e.Msg)
	me.str("version", apiVersion)
	return me.buf.Bytes()
}
