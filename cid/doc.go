// Package cid defines the content identifier (CID) that CIDStore keys and
// values are made of.
//
// A CID is 256 bits, stored as 32 bytes and read as four big-endian uint64
// words, most significant first (hi, mid-hi, mid-lo, lo). CIDs order by
// those words, which is the same as byte-wise order of the 32 bytes.
//
// Text forms:
//
//   - canonical: 64 hexadecimal digits, lower case on output (upper case is
//     accepted on input), for example
//     "00000000000000010000000000000002000000000000000300000000000000ff";
//   - the Python CIDStore wire form "E(a,b,c,d)" with the four words in
//     decimal, for example "E(1,2,3,255)". Spaces after the commas are
//     accepted on input; output never has them.
//
// Parse accepts both forms and returns an error wrapping ErrInvalidCID for
// anything else; it never panics.
//
// FromBytes and FromString derive a CID from content: the SHA-256 digest.
//
// The all-zero CID (Zero) is reserved. The Python CIDStore used it to mean
// "empty", and a zero value in Go is far more often an uninitialised
// variable than a real identifier, so the store rejects it as a key or value
// with ErrInvalidCID. It can still be parsed and formatted.
//
// Hash gives a fast, seeded 64-bit mix of all four words, used to pick a
// shard and as the hash of the shard maps. It spreads sequential CIDs evenly.
//
// This package is the leaf of the module: it imports only the standard
// library.
package cid
