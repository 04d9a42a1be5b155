package server

import (
	"bytes"
	"math"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/vmihailenco/msgpack/v5"
)

// TestMsgEncoderCID checks that the hand-written CID string matches what
// msgpack's EncodeString writes for EString, short and long forms alike,
// and that it does not allocate.
func TestMsgEncoderCID(t *testing.T) {
	for _, c := range []cid.CID{
		cid.Zero,
		cid.FromWords(1, 2, 3, 4),
		cid.FromWords(math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64),
		cid.FromString("x"),
	} {
		var want bytes.Buffer
		if err := msgpack.NewEncoder(&want).EncodeString(c.EString()); err != nil {
			t.Fatal(err)
		}
		me := newMsgEncoder()
		me.buf.Reset()
		me.cid(c)
		if !bytes.Equal(me.buf.Bytes(), want.Bytes()) {
			t.Fatalf("%s: got %x, want %x", c.EString(), me.buf.Bytes(), want.Bytes())
		}
	}
	me := newMsgEncoder()
	c := cid.FromString("y")
	if n := testing.AllocsPerRun(100, func() { me.buf.Reset(); me.cid(c) }); n != 0 {
		t.Fatalf("cid encoding allocates %v times", n)
	}
}
