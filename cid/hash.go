package cid

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// FromBytes returns the CID of content b: its SHA-256 digest.
func FromBytes(b []byte) CID { return CID(sha256.Sum256(b)) }

// FromString returns the CID of the UTF-8 bytes of s: their SHA-256 digest.
func FromString(s string) CID { return CID(sha256.Sum256([]byte(s))) }

// Multipliers from wyhash; any odd constants with well-mixed bits work.
const (
	m0 = 0xa0761d6478bd642f
	m1 = 0xe7037ed1a0b428db
	m2 = 0x8ebc6af09c88c6e3
	m3 = 0x589965cc75374cc3
)

// mum multiplies two words to 128 bits and folds the halves together.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// Hash returns a 64-bit hash of c mixed with seed. All 256 bits take part,
// so CIDs that differ only in their low word (sequential test keys) spread
// as evenly as random ones. It is not a cryptographic hash; a random seed
// per process makes hash flooding impractical.
func (c CID) Hash(seed uint64) uint64 {
	a := binary.LittleEndian.Uint64(c[0:8])
	b := binary.LittleEndian.Uint64(c[8:16])
	d := binary.LittleEndian.Uint64(c[16:24])
	e := binary.LittleEndian.Uint64(c[24:32])
	h := mum(a^m0^seed, b^m1) ^ mum(d^m2, e^m3^seed)
	return mum(h^m0, m3^seed)
}
