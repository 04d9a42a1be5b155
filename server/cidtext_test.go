package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

func TestParseCIDText(t *testing.T) {
	max := uint64(1<<64 - 1)
	good := map[string]cid.CID{
		"E(1,2,3,4)":      cid.FromWords(1, 2, 3, 4),
		"E(1, 2, 3, 4)":   cid.FromWords(1, 2, 3, 4),
		"E( 1 ,2 , 3,4 )": cid.FromWords(1, 2, 3, 4),
		"E(0001,02,3,0)":  cid.FromWords(1, 2, 3, 0),
		"E(18446744073709551615,0,0,18446744073709551615)": cid.FromWords(max, 0, 0, max),
		"E(5,6)":                           cid.FromWords(0, 0, 5, 6),
		"E(18446744073709551615,1)":        cid.FromWords(0, 0, max, 1),
		"E(0,0)":                           cid.Zero,
		strings.Repeat("0", 62) + "Ab":     cid.FromWords(0, 0, 0, 0xab),
		cid.FromWords(1, 2, 3, 4).String(): cid.FromWords(1, 2, 3, 4),
	}
	for in, want := range good {
		got, err := parseCIDText([]byte(in))
		if err != nil || got != want {
			t.Errorf("parseCIDText(%q) = %v, %v; want %v", in, got.EString(), err, want.EString())
		}
		if in[0] == 'E' && len(in) < 64 { // cid.Parse agrees on the forms it knows
			if c, err := cid.Parse(in); err == nil && c != got {
				t.Errorf("%q: cid.Parse says %v", in, c.EString())
			}
		}
	}
	for _, in := range []string{
		"", "E", "E()", "E(1)", "E(1,2,3)", "E(1,2,3,4,5)", "E(1,2", "E(1,,2)", "E(1,2,)", "E(,1,2)",
		"E(1;2)", "E(-1,2)", "E(+1,2)", "E(1.5,2)", "E(0x1,2)", "E(18446744073709551616,1)",
		"e(1,2)", " E(1,2)", "E(1,2) ", "(1,2)", "E(1,2,3,4)x", "E(1 2,3,4)",
		strings.Repeat("0", 63), strings.Repeat("0", 65), strings.Repeat("g", 64),
		"E(" + strings.Repeat("1", 60) + ")",
		"E(" + strings.Repeat("0", 58) + ")", // 64 characters, starting with E(
	} {
		if c, err := parseCIDText([]byte(in)); !errors.Is(err, cid.ErrInvalidCID) {
			t.Errorf("parseCIDText(%q) = %v, %v; want ErrInvalidCID", in, c.EString(), err)
		}
	}
}

func TestParseCIDTextAllocs(t *testing.T) {
	in := []byte("E(18446744073709551615,2,3,4)")
	if n := testing.AllocsPerRun(100, func() { parseCIDText(in) }); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
}
