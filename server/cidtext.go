package server

import (
	"encoding/hex"
	"fmt"

	"github.com/cidstore/cidstore/cid"
)

// maxCIDText is the longest CID text accepted: "E(" and ")", four words of
// up to 20 digits with up to 8 leading zeros each, commas and spaces.
const maxCIDText = 160

// parseCIDText reads a CID in any text form the Python CIDStore's clients
// send: "E(a,b,c,d)" with four decimal uint64 words, the legacy 128-bit
// "E(h,l)" (words 0, 0, h, l), or 64 hex digits. Spaces around the words
// and leading zeros are accepted. It does not allocate on success.
func parseCIDText(b []byte) (cid.CID, error) {
	if len(b) == 2*cid.Size && !(b[0] == 'E' && b[1] == '(') {
		var c cid.CID
		if _, err := hex.Decode(c[:], b); err != nil {
			return cid.Zero, badCID(b, "bad hex digit")
		}
		return c, nil
	}
	if len(b) < 4 || b[0] != 'E' || b[1] != '(' || b[len(b)-1] != ')' {
		return cid.Zero, badCID(b, `want "E(a,b,c,d)", "E(h,l)" or 64 hex digits`)
	}
	var w [4]uint64
	n := 0
	for body := b[2 : len(b)-1]; ; {
		if n == len(w) {
			return cid.Zero, badCID(b, "more than four words")
		}
		var ok bool
		if w[n], body, ok = parseWord(body); !ok {
			return cid.Zero, badCID(b, "want decimal uint64 words")
		}
		n++
		if len(body) == 0 {
			break
		}
		if body[0] != ',' {
			return cid.Zero, badCID(b, "want comma-separated words")
		}
		body = body[1:]
	}
	switch n {
	case 4:
		return cid.FromWords(w[0], w[1], w[2], w[3]), nil
	case 2:
		return cid.FromWords(0, 0, w[0], w[1]), nil
	}
	return cid.Zero, badCID(b, "want four words (or two, for a 128-bit CID)")
}

// parseWord reads one decimal uint64 with optional spaces around it and
// returns the rest of b.
func parseWord(b []byte) (uint64, []byte, bool) {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	const maxU64 = 1<<64 - 1
	var v uint64
	digits := 0
	for ; digits < len(b) && b[digits] >= '0' && b[digits] <= '9'; digits++ {
		d := uint64(b[digits] - '0')
		if v >= maxU64/10 && (v > maxU64/10 || d > maxU64%10) {
			return 0, nil, false // overflow
		}
		v = v*10 + d
	}
	if digits == 0 {
		return 0, nil, false
	}
	b = b[digits:]
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return v, b, true
}

func badCID(b []byte, why string) error {
	const clip = 80
	s := string(b[:min(len(b), clip)])
	if len(b) > clip {
		s += "..."
	}
	return fmt.Errorf("%w: %q: %s", cid.ErrInvalidCID, s, why)
}
