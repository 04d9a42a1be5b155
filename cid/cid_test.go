package cid

import (
	"errors"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		in   string
		want CID
	}{
		{"E(0,0,0,0)", Zero},
		{"E(1,2,3,255)", FromWords(1, 2, 3, 255)},
		{"E(1, 2, 3, 4)", FromWords(1, 2, 3, 4)},
		{"E(18446744073709551615,0,0,18446744073709551615)", FromWords(^uint64(0), 0, 0, ^uint64(0))},
		{strings.Repeat("0", 63) + "1", FromWords(0, 0, 0, 1)},
		{strings.Repeat("F", 64), FromWords(^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0))},
		{"00000000000000010000000000000002000000000000000300000000000000ff", FromWords(1, 2, 3, 255)},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range []string{
		"", "E", "E(", "E()", "E(1,2,3)", "E(1,2,3,4,5)", "E(1,2,3,4", "E(1,2,3,4) ",
		"e(1,2,3,4)", "E(-1,2,3,4)", "E(+1,2,3,4)", "E(1,,3,4)", "E( 1,2,3,4)", "E(1 ,2,3,4)",
		"E(18446744073709551616,0,0,0)", "E(0x1,2,3,4)", "E(1,2,3,4)x",
		strings.Repeat("0", 63), strings.Repeat("0", 65), strings.Repeat("g", 64),
		strings.Repeat("0", 62) + " 1", "0x" + strings.Repeat("0", 62), strings.Repeat("é", 32),
	} {
		if c, err := Parse(in); !errors.Is(err, ErrInvalidCID) {
			t.Errorf("Parse(%q) = %v, %v; want ErrInvalidCID", in, c, err)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, c := range []CID{Zero, FromWords(1, 2, 3, 4), FromString("hello"), FromWords(^uint64(0), 0, ^uint64(0), 7)} {
		for _, s := range []string{c.String(), c.EString()} {
			got, err := Parse(s)
			if err != nil || got != c {
				t.Errorf("Parse(%q) = %v, %v; want %v", s, got, err, c)
			}
		}
		b, _ := c.MarshalText()
		var u CID
		if err := u.UnmarshalText(b); err != nil || u != c {
			t.Errorf("text round trip of %v: %v, %v", c, u, err)
		}
	}
	if got := FromWords(1, 2, 3, 255).EString(); got != "E(1,2,3,255)" {
		t.Errorf("EString = %q", got)
	}
}

func TestWordsAndOrder(t *testing.T) {
	c := FromWords(10, 20, 30, 40)
	if a, b, d, e := c.Words(); a != 10 || b != 20 || d != 30 || e != 40 {
		t.Fatalf("Words = %d %d %d %d", a, b, d, e)
	}
	tests := []struct {
		a, b CID
		want int
	}{
		{FromWords(0, 0, 0, 1), FromWords(0, 0, 0, 2), -1},
		{FromWords(1, 0, 0, 0), FromWords(0, ^uint64(0), ^uint64(0), ^uint64(0)), 1},
		{FromWords(5, 5, 5, 5), FromWords(5, 5, 5, 5), 0},
		{FromWords(0, 1, 0, 0), FromWords(0, 0, 9, 9), 1},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%v,%v) = %d, want %d", tt.a.EString(), tt.b.EString(), got, tt.want)
		}
		if got := tt.a.Less(tt.b); got != (tt.want < 0) {
			t.Errorf("Less(%v,%v) = %v", tt.a.EString(), tt.b.EString(), got)
		}
		// Word order equals byte order.
		if got := strings.Compare(string(tt.a[:]), string(tt.b[:])); got != tt.want {
			t.Errorf("byte order disagrees for %v,%v", tt.a.EString(), tt.b.EString())
		}
	}
}

func TestFromString(t *testing.T) {
	// SHA-256("abc")
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := FromString("abc").String(); got != want {
		t.Fatalf("FromString(abc) = %s", got)
	}
	if FromBytes([]byte("abc")) != FromString("abc") {
		t.Fatal("FromBytes and FromString disagree")
	}
	if !Zero.IsZero() || FromString("").IsZero() {
		t.Fatal("IsZero")
	}
}

// Sequential keys must spread evenly over power-of-two buckets.
func TestHashSpreadsSequentialKeys(t *testing.T) {
	const buckets, n = 64, 64 * 1000
	var counts [buckets]int
	for i := uint64(0); i < n; i++ {
		counts[FromWords(0, 0, 0, i).Hash(0)>>58]++
	}
	for i, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("bucket %d got %d of %d keys (want about %d)", i, c, n, n/buckets)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	c := FromString("x")
	var sink uint64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink += c.Hash(uint64(i))
	}
	_ = sink
}

func BenchmarkParseHex(b *testing.B) {
	s := FromString("x").String()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}
