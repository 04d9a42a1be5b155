package cid

import (
	"encoding/binary"
	"errors"
)

// Size is the length of a CID in bytes.
const Size = 32

// CID is a 256-bit content identifier. The zero value is the reserved Zero
// CID. CIDs are comparable and can be used as map keys.
type CID [Size]byte

// Zero is the all-zero CID. It is reserved and is not a valid store key or
// value; see the package documentation.
var Zero CID

// ErrInvalidCID is returned (wrapped) for malformed CID text or for a
// reserved CID used where a real one is required.
var ErrInvalidCID = errors.New("cid: invalid CID")

// FromWords builds a CID from four words, most significant first.
func FromWords(hi, midHi, midLo, lo uint64) CID {
	var c CID
	binary.BigEndian.PutUint64(c[0:8], hi)
	binary.BigEndian.PutUint64(c[8:16], midHi)
	binary.BigEndian.PutUint64(c[16:24], midLo)
	binary.BigEndian.PutUint64(c[24:32], lo)
	return c
}

// Words returns the four words of c, most significant first.
func (c CID) Words() (hi, midHi, midLo, lo uint64) {
	return binary.BigEndian.Uint64(c[0:8]), binary.BigEndian.Uint64(c[8:16]),
		binary.BigEndian.Uint64(c[16:24]), binary.BigEndian.Uint64(c[24:32])
}

// IsZero reports whether c is the reserved all-zero CID.
func (c CID) IsZero() bool { return c == Zero }

// Compare returns -1, 0 or +1 as a is less than, equal to or greater than b
// in word order (equivalently, byte order).
func Compare(a, b CID) int {
	for i := 0; i < Size; i += 8 {
		x := binary.BigEndian.Uint64(a[i : i+8])
		y := binary.BigEndian.Uint64(b[i : i+8])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Less reports whether a orders before b.
func Less(a, b CID) bool { return Compare(a, b) < 0 }

// Compare returns Compare(c, o).
func (c CID) Compare(o CID) int { return Compare(c, o) }

// Less reports whether c orders before o.
func (c CID) Less(o CID) bool { return Compare(c, o) < 0 }
