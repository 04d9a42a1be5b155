package replica_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/replica"
	"github.com/cidstore/cidstore/store"
)

// A one-node cluster: bootstrap, write through the leader, read
// linearizably. More nodes join with AddVoter on the leader.
func Example() {
	dir, err := os.MkdirTemp("", "replica-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	st, err := store.Open("", store.Options{InMemory: true}) // raft's log is the durable record
	if err != nil {
		panic(err)
	}
	defer st.Close() // after the node
	n, err := replica.Open(replica.Config{
		ID:    "n1",
		Addr:  "127.0.0.1:0",
		Dir:   dir,
		Store: st,
		Meta:  map[string]string{"resp": "127.0.0.1:6379"},
	})
	if err != nil {
		panic(err)
	}
	defer n.Close()
	if err := n.Bootstrap(); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leader, err := n.WaitLeader(ctx) // a one-node cluster elects itself
	if err != nil {
		panic(err)
	}
	fmt.Println(leader.ID)

	k, v := cid.FromString("alice"), cid.FromString("bob")
	if err := n.Insert(k, v); err != nil { // returns once committed and applied
		panic(err)
	}
	r, err := n.Read(ctx, replica.Linearizable)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Contains(k, v))
	// Output:
	// n1
	// true
}
