package server

import (
	"testing"

	"github.com/go-zeromq/zmq4"
)

func TestSmoke(t *testing.T) {
	ts := startServer(t, Config{}, "")
	c := dial(t, zmq4.Req, ts.Addr("zmq"))
	ok(t, c.call(map[string]any{"command": "ping"}))
	m := ok(t, c.call(map[string]any{"command": "batch_insert", "triples": []any{map[string]any{"s": "E(1,2,3,4)", "p": "E(1,2)", "o": []uint64{1, 2, 3, 5}}}}))
	t.Log(m)
	m = ok(t, c.call(map[string]any{"command": "query", "s": "E(1,2,3,4)"}))
	t.Log(m)
	failed(t, c.call([]byte{0xc1}), 400)
}
