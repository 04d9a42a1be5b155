package cluster_test

import (
	"context"
	"log"
	"os"

	"github.com/cidstore/cidstore/cluster"
	"github.com/cidstore/cidstore/replica"
	"github.com/cidstore/cidstore/server"
	"github.com/cidstore/cidstore/store"
)

// Serving a replica, as `cidstore serve -raft-id n1 -bootstrap DIR` does:
// the server's endpoints are bound first, so that the node can publish
// their addresses for redirects; then the node opens and bootstraps (or
// joins through another member's control plane with Client.AddVoter).
func Example() {
	dir, err := os.MkdirTemp("", "cluster-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close() // last

	b := cluster.NewBackend(st, replica.Linearizable)
	srv := server.New(server.Config{ZMQ: "tcp://127.0.0.1:0", HTTP: "127.0.0.1:0", Token: "s3cret"})
	cluster.Register(srv, b, &cluster.Client{Token: "s3cret"})
	if err := srv.ListenHTTP(); err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(b); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background()) // first

	n, err := replica.Open(replica.Config{
		ID: "n1", Addr: "127.0.0.1:0", Dir: dir, Store: st,
		Meta: map[string]string{"zmq": srv.Addr("zmq"), "http": srv.Addr("http")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close() // after the server
	b.SetNode(n)
	if err := n.Bootstrap(); err != nil {
		log.Fatal(err)
	}
	// Clients now write to the leader's ZeroMQ endpoint; a follower would
	// answer them with error_code 307 and "leader": the leader's address.
}
