package server_test

import (
	"context"
	"fmt"

	"github.com/cidstore/cidstore/server"
	"github.com/cidstore/cidstore/store"
	"github.com/go-zeromq/zmq4"
	"github.com/vmihailenco/msgpack/v5"
)

// A server on a kernel-chosen loopback port, and a ZeroMQ REQ client that
// inserts a batch of triples and queries one back, as the Python
// CIDStore's clients do.
func Example() {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	srv := server.New(server.Config{ZMQ: "tcp://127.0.0.1:0"})
	if err := srv.Start(st); err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())

	req := zmq4.NewReq(context.Background())
	defer req.Close()
	if err := req.Dial(srv.Addr("zmq")); err != nil {
		panic(err)
	}
	call := func(msg map[string]any) map[string]any {
		b, _ := msgpack.Marshal(msg)
		if err := req.Send(zmq4.NewMsg(b)); err != nil {
			panic(err)
		}
		reply, err := req.Recv()
		if err != nil {
			panic(err)
		}
		var m map[string]any
		msgpack.Unmarshal(reply.Frames[0], &m)
		return m
	}
	r := call(map[string]any{"command": "batch_insert", "triples": []any{
		map[string]any{"s": "E(1,2)", "p": "E(3,4)", "o": "E(5,6)"},
		map[string]any{"s": "E(1,2)", "p": "E(3,4)", "o": "E(7,8)"},
	}})
	fmt.Println(r["status"], r["inserted"])
	r = call(map[string]any{"command": "query", "s": "E(1,2)", "o": "E(7,8)"})
	fmt.Println(r["count"], r["results"])
	r = call(map[string]any{"command": "frobnicate"})
	fmt.Println(r["error_code"], r["error_msg"])
	// Output:
	// ok 2
	// 1 [[E(0,0,1,2) E(0,0,3,4) E(0,0,7,8)]]
	// 400 unknown command "frobnicate"
}
