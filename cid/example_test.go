package cid_test

import (
	"errors"
	"fmt"

	"github.com/cidstore/cidstore/cid"
)

func Example() {
	c := cid.FromWords(1, 2, 3, 255)
	fmt.Println(c)
	fmt.Println(c.EString())

	p, err := cid.Parse("E(1, 2, 3, 255)")
	fmt.Println(p == c, err)

	_, err = cid.Parse("not a cid")
	fmt.Println(errors.Is(err, cid.ErrInvalidCID))

	fmt.Println(cid.FromString("abc"))
	// Output:
	// 00000000000000010000000000000002000000000000000300000000000000ff
	// E(1,2,3,255)
	// true <nil>
	// true
	// ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
}
