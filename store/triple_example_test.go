package store_test

import (
	"fmt"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Triples: an atomic batch, then the patterns. cid.Zero is the wildcard.
func ExampleStore_Query() {
	s, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	alice, bob, carol := cid.FromString("alice"), cid.FromString("bob"), cid.FromString("carol")
	knows, likes := cid.FromString("knows"), cid.FromString("likes")
	added, err := s.InsertTriples([]store.Triple{
		{S: alice, P: knows, O: bob},
		{S: alice, P: knows, O: carol},
		{S: bob, P: likes, O: carol},
		{S: alice, P: knows, O: bob}, // a duplicate counts once
	})
	fmt.Println(added, err, s.TripleCount())

	name := map[cid.CID]string{alice: "alice", bob: "bob", carol: "carol", knows: "knows", likes: "likes"}
	show := func(sub, pred, obj cid.CID) {
		n := 0
		for range s.Query(sub, pred, obj) {
			n++
		}
		fmt.Printf("%d:", n)
		for t := range s.Query(sub, pred, obj) {
			fmt.Printf(" (%s %s %s)", name[t.S], name[t.P], name[t.O])
			break // the order is fixed per pattern; one is enough here
		}
		fmt.Println()
	}
	show(alice, knows, cid.Zero)    // SP?: whom alice knows
	show(cid.Zero, cid.Zero, carol) // ??O: everything about carol
	show(cid.Zero, likes, cid.Zero) // ?P?
	fmt.Println(s.HasTriple(store.Triple{S: bob, P: likes, O: carol}))

	// Mixed changes apply in order, atomically.
	changed, err := s.ApplyTriples([]store.TripleOp{
		{Delete: true, Triple: store.Triple{S: alice, P: knows, O: bob}},
		{Triple: store.Triple{S: carol, P: likes, O: alice}},
	})
	fmt.Println(changed, err, s.TripleCount())
	// Output:
	// 3 <nil> 3
	// 2: (alice knows carol)
	// 2: (alice knows carol)
	// 1: (bob likes carol)
	// true
	// 2 <nil> 3
}
