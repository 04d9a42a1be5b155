package cid

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseCID checks Parse on arbitrary text: it never panics; on success
// both output forms parse back to the same CID, the canonical form is the
// lower-cased input when the input was hex, and UnmarshalText agrees; on
// failure the error wraps ErrInvalidCID.
func FuzzParseCID(f *testing.F) {
	for _, s := range []string{
		"", "E", "E(", "E()", "E(0,0,0,0)", "E(1,2,3,4)", "E(1, 2, 3, 4)", "E(1,  2,   3,    4)",
		"E(18446744073709551615,18446744073709551615,18446744073709551615,18446744073709551615)",
		"E(18446744073709551616,0,0,0)", "E(01,2,3,4)", "E(1,2,3,4", "E(1,2,3,4))", "E(1,2,3)",
		"E(-1,2,3,4)", "E(+1,2,3,4)", "E(1,,3,4)", "E( 1,2,3,4)", "e(1,2,3,4)",
		// An E form that is exactly 64 characters long.
		"E(18446744073709551615,18446744073709551615,12345678901234567,1)",
		strings.Repeat("0", 64), strings.Repeat("f", 64), strings.Repeat("F", 64),
		strings.Repeat("0", 63), strings.Repeat("0", 65), strings.Repeat("g", 64),
		"00000000000000010000000000000002000000000000000300000000000000ff",
		"0x" + strings.Repeat("0", 62), strings.Repeat("é", 32),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Every CID, whatever the length of its E form, must survive both
		// text forms. Derive one from the input with words of varying
		// magnitude.
		d := derived(s)
		for _, form := range []string{d.String(), d.EString()} {
			if back, err := Parse(form); err != nil || back != d {
				t.Fatalf("Parse(%q) = %v, %v; want %v", form, back, err, d)
			}
		}

		c, err := Parse(s)
		var u CID
		uerr := u.UnmarshalText([]byte(s))
		if (err == nil) != (uerr == nil) || u != c {
			t.Fatalf("Parse(%q) = %v, %v; UnmarshalText = %v, %v", s, c, err, u, uerr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidCID) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrInvalidCID", s, err)
			}
			if c != Zero {
				t.Fatalf("Parse(%q) failed but returned %v", s, c)
			}
			return
		}
		hex := c.String()
		if len(hex) != 2*Size || strings.ToLower(hex) != hex {
			t.Fatalf("String() = %q is not 64 lower-case hex digits", hex)
		}
		if !strings.HasPrefix(s, "E(") && strings.ToLower(s) != hex {
			t.Fatalf("Parse(%q) accepted hex that formats as %q", s, hex)
		}
		for _, form := range []string{hex, c.EString()} {
			back, err := Parse(form)
			if err != nil {
				t.Fatalf("Parse(%q) of the output of %q: %v", form, s, err)
			}
			if back != c {
				t.Fatalf("Parse(%q) = %v, want %v", form, back, c)
			}
		}
		if b, _ := c.MarshalText(); string(b) != hex {
			t.Fatalf("MarshalText = %q, String = %q", b, hex)
		}
	})
}

// derived builds a CID from s: word i is taken from bytes 8i..8i+7 of s
// (zero padded) and shifted right by the low six bits of byte 32+i, so the
// words range over every decimal length from 1 to 20 digits.
func derived(s string) CID {
	var b [Size + 4]byte
	copy(b[:], s)
	var w [4]uint64
	for i := range w {
		for j := 0; j < 8; j++ {
			w[i] = w[i]<<8 | uint64(b[8*i+j])
		}
		w[i] >>= b[Size+i] & 63
	}
	return FromWords(w[0], w[1], w[2], w[3])
}
