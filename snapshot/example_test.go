package snapshot_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
)

func Example() {
	// One partition: keys ascending, each with an ascending value set.
	part := func(yield func(cid.CID, []cid.CID) bool) {
		for i := uint64(1); i <= 3; i++ {
			if !yield(cid.FromWords(0, 0, 0, i), []cid.CID{cid.FromWords(0, 0, 1, i)}) {
				return
			}
		}
	}
	var buf bytes.Buffer
	sum, err := snapshot.Write(context.Background(), &buf, snapshot.Header{LSN: 42}, []snapshot.Part{part})
	if err != nil {
		panic(err)
	}
	fmt.Println(sum.Entries, sum.Pairs)

	h, _, err := snapshot.Read(context.Background(), &buf, func(k cid.CID, vals []cid.CID) error {
		fmt.Println(k.EString(), len(vals))
		return nil
	})
	fmt.Println(h.LSN, err)
	// Output:
	// 3 3
	// E(0,0,0,1) 1
	// E(0,0,0,2) 1
	// E(0,0,0,3) 1
	// 42 <nil>
}
