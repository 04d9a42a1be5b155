package store_test

import (
	"fmt"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

func ExampleStore_ApplyBatch() {
	s, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	k := cid.FromString("k")
	one, two := cid.FromWords(0, 0, 0, 1), cid.FromWords(0, 0, 0, 2)
	// One atomic unit, applied in order: the insert after the key's
	// deletion survives it.
	err = s.ApplyBatch([]store.PairOp{
		{Kind: store.OpInsert, Key: k, Value: one},
		{Kind: store.OpDeleteKey, Key: k},
		{Kind: store.OpInsert, Key: k, Value: two},
	})
	fmt.Println(err, len(s.Get(k)), s.Contains(k, two))
	// Output: <nil> 1 true
}
