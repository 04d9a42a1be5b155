package cid

import (
	"encoding/hex"
	"fmt"
	"strconv"
)

const hexDigits = "0123456789abcdef"

// String returns the canonical text form: 64 lower-case hex digits.
func (c CID) String() string {
	var buf [2 * Size]byte
	return string(c.appendHex(buf[:0]))
}

// AppendText appends the canonical text form of c to b.
func (c CID) AppendText(b []byte) ([]byte, error) { return c.appendHex(b), nil }

func (c CID) appendHex(b []byte) []byte {
	for _, x := range c {
		b = append(b, hexDigits[x>>4], hexDigits[x&0x0f])
	}
	return b
}

// EString returns the Python CIDStore form "E(a,b,c,d)" with decimal words.
func (c CID) EString() string {
	var buf [4 + 4*20 + 3]byte
	b := append(buf[:0], 'E', '(')
	hi, mh, ml, lo := c.Words()
	for i, w := range [4]uint64{hi, mh, ml, lo} {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, w, 10)
	}
	return string(append(b, ')'))
}

// MarshalText implements encoding.TextMarshaler with the canonical form.
func (c CID) MarshalText() ([]byte, error) { return c.appendHex(make([]byte, 0, 2*Size)), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts both forms.
func (c *CID) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// MustParse is like Parse but panics on error. It is meant for constants in
// tests and examples, never for untrusted input.
func MustParse(s string) CID {
	c, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return c
}

// Parse reads a CID in either text form: 64 hex digits or "E(a,b,c,d)".
// Any other input returns an error wrapping ErrInvalidCID.
func Parse(s string) (CID, error) {
	// The E form is recognised first: one of exactly 64 characters (58
	// digits in all) is valid, and "E(" can never begin 64 hex digits.
	if len(s) >= 2 && s[0] == 'E' && s[1] == '(' {
		return parseE(s)
	}
	if len(s) == 2*Size {
		var c CID
		if _, err := hex.Decode(c[:], []byte(s)); err != nil {
			return Zero, fmt.Errorf("%w: %q: bad hex digit", ErrInvalidCID, clip(s))
		}
		return c, nil
	}
	return Zero, fmt.Errorf("%w: %q: want 64 hex digits or E(a,b,c,d)", ErrInvalidCID, clip(s))
}

// parseE parses "E(a,b,c,d)": four decimal uint64 words, optional spaces
// after each comma, nothing else.
func parseE(s string) (CID, error) {
	bad := func(why string) (CID, error) {
		return Zero, fmt.Errorf("%w: %q: %s", ErrInvalidCID, clip(s), why)
	}
	if s[len(s)-1] != ')' {
		return bad("missing closing parenthesis")
	}
	body := s[2 : len(s)-1]
	var w [4]uint64
	for i := range w {
		if i > 0 {
			if len(body) == 0 || body[0] != ',' {
				return bad("want four comma-separated words")
			}
			body = body[1:]
			for len(body) > 0 && body[0] == ' ' {
				body = body[1:]
			}
		}
		n := 0
		for n < len(body) && body[n] >= '0' && body[n] <= '9' {
			n++
		}
		if n == 0 {
			return bad("want a decimal word")
		}
		v, err := strconv.ParseUint(body[:n], 10, 64)
		if err != nil {
			return bad("word out of range")
		}
		w[i] = v
		body = body[n:]
	}
	if len(body) != 0 {
		return bad("trailing characters")
	}
	return FromWords(w[0], w[1], w[2], w[3]), nil
}

// clip shortens hostile input before it is echoed in an error message.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
