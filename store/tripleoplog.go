package store

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cidstore/cidstore/cid"
)

// Triple operation records, as written to the WAL beside the pair records
// of oplog.go. Byte by byte (no padding; a triple is s | p | o, 96 raw
// bytes):
//
//	type 5  triple insert  s [32]byte | p [32]byte | o [32]byte     96 bytes
//	type 6  triple delete  s [32]byte | p [32]byte | o [32]byte     96 bytes
//	type 7  triple batch   count uint32 (little endian) | count items
//	                       item: kind uint8 (5 or 6, as above)
//	                             | s [32]byte | p [32]byte | o [32]byte
//
// A call that changes one triple logs a type 5 or 6 record; a batch that
// changes several logs one type 7 record holding only its net changes
// (one item per triple whose presence changes, in SPO order), so after a
// crash a batch is present entirely or not at all. Each is an idempotent
// assignment (the triple is present, or absent), so replaying any suffix
// of the log converges. Decoders reject wrong lengths, unknown kinds,
// counts the payload cannot hold and the zero CID, allocating nothing from
// an untrusted length.
const (
	opTripleInsert uint8 = 5
	opTripleDelete uint8 = 6
	opTripleBatch  uint8 = 7
)

// tripleSize is the encoded size of a triple.
const tripleSize = 3 * cid.Size

// MaxTripleBatch is the largest number of operations one triple batch
// accepts: its record must fit the WAL's 64 MiB payload limit.
const MaxTripleBatch = 500_000

// isTripleRecord reports whether a record type holds triple operations.
func isTripleRecord(typ uint8) bool { return typ >= opTripleInsert && typ <= opTripleBatch }

func appendTriple(b []byte, t *Triple) []byte {
	b = append(b, t.S[:]...)
	b = append(b, t.P[:]...)
	return append(b, t.O[:]...)
}

func readTriple(p []byte) Triple {
	return Triple{S: cid.CID(p[:cid.Size]), P: cid.CID(p[cid.Size : 2*cid.Size]), O: cid.CID(p[2*cid.Size : tripleSize])}
}

// encodeTripleOps returns the record type and the payload that log
// changes (at least one), appended to dst.
func encodeTripleOps(dst []byte, changes []TripleOp) (uint8, []byte) {
	if len(changes) == 1 {
		typ := opTripleInsert
		if changes[0].Delete {
			typ = opTripleDelete
		}
		return typ, appendTriple(dst, &changes[0].Triple)
	}
	b := slices.Grow(dst, 4+len(changes)*(1+tripleSize))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(changes)))
	for i := range changes {
		kind := opTripleInsert
		if changes[i].Delete {
			kind = opTripleDelete
		}
		b = append(b, kind)
		b = appendTriple(b, &changes[i].Triple)
	}
	return opTripleBatch, b
}

// decodeTripleOps decodes the payload of a triple record of type typ and
// calls fn for each operation in order.
func decodeTripleOps(typ uint8, p []byte, fn func(TripleOp)) error {
	switch typ {
	case opTripleInsert, opTripleDelete:
		if len(p) != tripleSize {
			return fmt.Errorf("record type %d: payload of %d bytes, want %d", typ, len(p), tripleSize)
		}
		op := TripleOp{Delete: typ == opTripleDelete, Triple: readTriple(p)}
		if err := checkTriple(op.Triple); err != nil {
			return fmt.Errorf("record type %d: %w", typ, err)
		}
		fn(op)
		return nil
	case opTripleBatch:
		if len(p) < 4 {
			return fmt.Errorf("triple batch record: payload of %d bytes has no count", len(p))
		}
		n := binary.LittleEndian.Uint32(p)
		p = p[4:]
		if uint64(n)*(1+tripleSize) != uint64(len(p)) {
			return fmt.Errorf("triple batch record: count %d does not match %d bytes", n, len(p))
		}
		for i := uint32(0); i < n; i++ {
			kind := p[0]
			if kind != opTripleInsert && kind != opTripleDelete {
				return fmt.Errorf("triple batch record: item %d has unknown kind %d", i, kind)
			}
			op := TripleOp{Delete: kind == opTripleDelete, Triple: readTriple(p[1:])}
			if err := checkTriple(op.Triple); err != nil {
				return fmt.Errorf("triple batch record: item %d: %w", i, err)
			}
			fn(op)
			p = p[1+tripleSize:]
		}
		return nil
	}
	return fmt.Errorf("unknown record type %d", typ)
}

// checkTriple rejects a triple with a zero component.
func checkTriple(t Triple) error {
	switch {
	case t.S.IsZero():
		return fmt.Errorf("%w: zero CID as subject", ErrInvalidCID)
	case t.P.IsZero():
		return fmt.Errorf("%w: zero CID as predicate", ErrInvalidCID)
	case t.O.IsZero():
		return fmt.Errorf("%w: zero CID as object", ErrInvalidCID)
	}
	return nil
}
