package shard_test

import (
	"fmt"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/shard"
)

func Example() {
	s, err := shard.New(shard.Options{})
	if err != nil {
		panic(err)
	}
	k := cid.FromWords(0, 0, 0, 1)
	s.Lock() // writers hold the lock across "log, then publish"
	s.Add(k, cid.FromWords(0, 0, 0, 20))
	s.Add(k, cid.FromWords(0, 0, 0, 10))
	view := s.View() // O(1) point-in-time view
	s.Add(k, cid.FromWords(0, 0, 0, 30))
	s.Unlock()

	fmt.Println(s.Count(k), s.Contains(k, cid.FromWords(0, 0, 0, 10))) // lock-free reads
	view.Ascend(nil, nil, func(e shard.Entry) bool {
		fmt.Println(e.Key().EString(), e.Len()) // the view does not see the third value
		return true
	})
	// Output:
	// 3 true
	// E(0,0,0,1) 2
}
