package store_test

import (
	"errors"
	"fmt"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

func Example() {
	s, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	alice := cid.FromString("alice")
	knows := []cid.CID{cid.FromWords(0, 0, 0, 3), cid.FromWords(0, 0, 0, 1), cid.FromWords(0, 0, 0, 2)}
	for _, v := range knows {
		if err := s.Insert(alice, v); err != nil {
			panic(err)
		}
	}
	s.Insert(alice, knows[0]) // sets: inserting twice is a no-op

	for _, v := range s.Get(alice) { // sorted
		fmt.Println(v.EString())
	}
	fmt.Println(s.Contains(alice, knows[1]), s.Count(alice), s.Len())

	s.Delete(alice, knows[1])
	fmt.Println(s.Count(alice))
	s.DeleteKey(alice)
	fmt.Println(s.Get(alice) == nil)
	// Output:
	// E(0,0,0,1)
	// E(0,0,0,2)
	// E(0,0,0,3)
	// true 3 1
	// 2
	// true
}

func ExampleStore_All() {
	s, _ := store.Open("", store.Options{InMemory: true})
	defer s.Close()
	s.InsertBatch([]store.Pair{
		{Key: cid.FromWords(0, 0, 0, 2), Value: cid.FromWords(0, 0, 0, 20)},
		{Key: cid.FromWords(0, 0, 0, 1), Value: cid.FromWords(0, 0, 0, 10)},
		{Key: cid.FromWords(0, 0, 0, 1), Value: cid.FromWords(0, 0, 0, 11)},
	})
	for k, vals := range s.All() { // ascending key order across all shards
		fmt.Println(k.EString(), len(vals))
	}
	// Output:
	// E(0,0,0,1) 2
	// E(0,0,0,2) 1
}

func ExampleStore_AppendValues() {
	s, _ := store.Open("", store.Options{InMemory: true})
	defer s.Close()
	k := cid.FromString("k")
	s.Insert(k, cid.FromString("v"))

	buf := make([]cid.CID, 0, 16) // reuse across calls: no allocation
	buf = s.AppendValues(buf[:0], k)
	fmt.Println(len(buf))
	// Output: 1
}

func ExampleStore_UpdateConfig() {
	// The initial configuration: the defaults, with what differs changed.
	c := store.DefaultConfig()
	c.InlineValues = 8
	s, err := store.Open("", store.Options{InMemory: true, Config: &c})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	// Change it while the store runs: validated, swapped atomically.
	err = s.UpdateConfig(func(c store.Config) store.Config {
		c.InlineValues = 64
		c.CompactInterval = 0 // zero is taken as given: compactor off
		return c
	})
	fmt.Println(err, s.Config().InlineValues, s.Config().CompactInterval)

	// An invalid value is rejected and the old one stays.
	err = s.UpdateConfig(func(c store.Config) store.Config { c.InlineValues = 0; return c })
	fmt.Println(errors.Is(err, store.ErrInvalidOptions), s.Config().InlineValues)
	// Output:
	// <nil> 64 0s
	// true 64
}

func ExampleLayout() {
	l := store.Layout{Dir: "/var/lib/cidstore"}
	fmt.Println(l.Lock())
	fmt.Println(l.WAL())
	fmt.Println(l.Snapshot(4711))
	// Output:
	// /var/lib/cidstore/LOCK
	// /var/lib/cidstore/wal
	// /var/lib/cidstore/snapshots/00000000000000004711.snap
}
