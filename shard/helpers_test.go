package shard

import (
	"testing"

	"github.com/cidstore/cidstore/cid"
)

// Helpers the shard tests share.

// w is the CID with the low word i.
func w(i uint64) cid.CID { return cid.FromWords(0, 0, 0, i) }

// newShard is a new empty shard with InlineMax inline.
func newShard(t testing.TB, inline int) *Shard {
	t.Helper()
	s, err := New(Options{InlineMax: inline})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
