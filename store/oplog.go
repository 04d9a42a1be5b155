package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/shard"
)

// Operation records, as written to the WAL (package wal frames them; this
// file defines their payloads). Every operation is an idempotent
// assignment, so replaying any suffix of the log, even twice, converges to
// the same state.
//
// Record types and payloads, byte by byte (no padding):
//
//	type 1  add        key [32]byte | value [32]byte               64 bytes
//	type 2  remove     key [32]byte | value [32]byte               64 bytes
//	type 3  remove key key [32]byte                                32 bytes
//	type 4  batch      count uint32 (little endian) | count items
//	                   item: kind uint8 (1, 2 or 3, as above) | key [32]byte
//	                         | value [32]byte unless kind is 3
//	type 16 imported   pairs uint64 | keys uint64 (little endian)   16 bytes
//
// A batch is one record, so after a crash it is present entirely or not at
// all. Decoders reject unknown types, wrong lengths and counts that the
// payload cannot hold, without allocating from an untrusted length.
//
// An imported record is not an operation: it marks where Import loaded
// pairs (and keys) that are in no WAL record, only in the snapshot Import
// then took, whose cut is at or after the record. Recovery that would
// replay it (because that snapshot is damaged or gone) cannot rebuild the
// store and fails with ErrCorrupt instead of silently losing the import.
// Import into a store whose WAL is still empty writes no such record: its
// snapshot has cut 0, which the WAL never holds anything for.
const (
	opAdd       uint8 = 1
	opRemove    uint8 = 2
	opRemoveKey uint8 = 3
	opBatch     uint8 = 4
	opImported  uint8 = 16
)

// importedSize is the payload size of an imported record.
const importedSize = 16

// importMark is what an imported record says; decodeOps returns it as its
// error, for the caller to decide (see opImported).
type importMark struct{ pairs, keys uint64 }

func (m *importMark) Error() string {
	return fmt.Sprintf("%d pairs in %d keys were imported here from a snapshot stream and are in no WAL record", m.pairs, m.keys)
}

// encodeImported returns the payload of an imported record.
func encodeImported(pairs, keys uint64) []byte {
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, importedSize), pairs)
	return binary.LittleEndian.AppendUint64(b, keys)
}

// op is one decoded operation.
type op struct {
	kind uint8
	key  cid.CID
	val  cid.CID
}

// encodePair writes the payload of an add or remove into buf.
func encodePair(buf *[2 * cid.Size]byte, k, v cid.CID) []byte {
	copy(buf[:cid.Size], k[:])
	copy(buf[cid.Size:], v[:])
	return buf[:]
}

// appendBatchItem appends one batch item.
func appendBatchItem(b []byte, o op) []byte {
	b = append(b, o.kind)
	b = append(b, o.key[:]...)
	if o.kind != opRemoveKey {
		b = append(b, o.val[:]...)
	}
	return b
}

// decodeOps decodes the payload of a record of type typ and calls fn for
// each operation in order. For a well-formed imported record it returns a
// *importMark.
func decodeOps(typ uint8, p []byte, fn func(op)) error {
	switch typ {
	case opAdd, opRemove:
		if len(p) != 2*cid.Size {
			return fmt.Errorf("record type %d: payload of %d bytes, want %d", typ, len(p), 2*cid.Size)
		}
		o := op{kind: typ, key: cid.CID(p[:cid.Size]), val: cid.CID(p[cid.Size:])}
		if err := o.check(); err != nil {
			return err
		}
		fn(o)
	case opRemoveKey:
		if len(p) != cid.Size {
			return fmt.Errorf("record type %d: payload of %d bytes, want %d", typ, len(p), cid.Size)
		}
		o := op{kind: typ, key: cid.CID(p)}
		if err := o.check(); err != nil {
			return err
		}
		fn(o)
	case opBatch:
		if len(p) < 4 {
			return fmt.Errorf("batch record: payload of %d bytes has no count", len(p))
		}
		n := binary.LittleEndian.Uint32(p)
		p = p[4:]
		if uint64(n) > uint64(len(p))/(1+cid.Size) {
			return fmt.Errorf("batch record: count %d does not fit %d bytes", n, len(p))
		}
		for i := uint32(0); i < n; i++ {
			if len(p) < 1+cid.Size {
				return fmt.Errorf("batch record: item %d truncated", i)
			}
			o := op{kind: p[0], key: cid.CID(p[1 : 1+cid.Size])}
			p = p[1+cid.Size:]
			switch o.kind {
			case opAdd, opRemove:
				if len(p) < cid.Size {
					return fmt.Errorf("batch record: item %d truncated", i)
				}
				o.val = cid.CID(p[:cid.Size])
				p = p[cid.Size:]
			case opRemoveKey:
			default:
				return fmt.Errorf("batch record: item %d has unknown kind %d", i, o.kind)
			}
			if err := o.check(); err != nil {
				return fmt.Errorf("batch record: item %d: %w", i, err)
			}
			fn(o)
		}
		if len(p) != 0 {
			return fmt.Errorf("batch record: %d trailing bytes", len(p))
		}
	case opImported:
		if len(p) != importedSize {
			return fmt.Errorf("imported record: payload of %d bytes, want %d", len(p), importedSize)
		}
		return &importMark{binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:])}
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return nil
}

// check rejects operations the store never writes: the zero CID as a key
// or value.
func (o op) check() error {
	if o.key.IsZero() || (o.kind != opRemoveKey && o.val.IsZero()) {
		return fmt.Errorf("record type %d names the reserved zero CID", o.kind)
	}
	return nil
}

// apply performs o on sh, whose lock the caller holds, and reports whether
// the shard changed.
func apply(sh *shard.Shard, o op) bool {
	switch o.kind {
	case opAdd:
		return sh.Add(o.key, o.val)
	case opRemove:
		return sh.Remove(o.key, o.val)
	default:
		return sh.RemoveKey(o.key) > 0
	}
}
