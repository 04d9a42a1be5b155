package replica

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Commands, as carried in the Data of a raft log entry. Every command is a
// list of idempotent assignments (add a value, remove a value, remove a
// key; add or remove a triple) or a node's metadata, so applying a suffix
// of the log again, or on top of a state that already holds part of it,
// converges to the same state.
//
// Format, byte by byte (no padding; uvarint as in encoding/binary):
//
//	[0]   version   1 (a decoder rejects any other with ErrUnsupported)
//	[1]   kind      1 pair ops, 2 triple ops, 3 node metadata
//
//	kind 1 and 2:
//	      count     uvarint, 1..MaxOps (kind 1) or 1..MaxTripleOps (kind 2)
//	      count ops, each:
//	        code    uint8
//	        kind 1: 1 insert   key [32] | value [32]
//	                2 delete   key [32] | value [32]
//	                3 delete   key [32]            (the key with all its values)
//	        kind 2: 1 insert   s [32] | p [32] | o [32]
//	                2 delete   s [32] | p [32] | o [32]
//	      nothing after the last op
//
//	kind 3:
//	      the rest  a JSON object {"id": string, "meta": {string: string}}
//	                of at most maxMetaSize bytes; a null or absent meta
//	                removes the node's entry
//
// The ops of one command are applied in order as one atomic unit: a pair
// command is one Store.ApplyBatch (Store.InsertBatch when it only
// inserts), a triple command one Store.ApplyTriples. A decoder bounds
// every count by the bytes that remain and by the store's batch limit,
// rejects the reserved zero CID, unknown codes and trailing bytes with
// ErrBadCommand (naming the offset), and never panics.
const (
	commandVersion = 1

	kindPairs   = 1
	kindTriples = 2
	kindMeta    = 3

	codeInsert    = 1
	codeDelete    = 2
	codeDeleteKey = 3 // pairs only
)

// MaxOps is the largest number of pair operations one command carries:
// the store's own batch limit.
const MaxOps = store.MaxBatch

// MaxTripleOps is the largest number of triple operations one command
// carries: the store's triple batch limit.
const MaxTripleOps = store.MaxTripleBatch

// maxMetaSize bounds a metadata command.
const maxMetaSize = 64 << 10

// Command is one replicated change to the store: what a raft log entry
// carries. Build one with Insert, Delete, DeleteKey, InsertBatch,
// ApplyBatch, InsertTriples, DeleteTriples or ApplyTriples and run it
// with Node.Apply. A Command refers to the slice it was built from: leave
// it unchanged until Apply returns.
type Command struct {
	kind    uint8
	pairs   []store.PairOp
	triples []store.TripleOp
	meta    *metaChange
}

// metaChange sets (or, with a nil Meta, removes) one node's metadata.
type metaChange struct {
	ID   string            `json:"id"`
	Meta map[string]string `json:"meta"`
}

// Insert returns the command that adds v to the values of k.
func Insert(k, v cid.CID) Command {
	return ApplyBatch([]store.PairOp{{Kind: store.OpInsert, Key: k, Value: v}})
}

// Delete returns the command that removes v from the values of k.
func Delete(k, v cid.CID) Command {
	return ApplyBatch([]store.PairOp{{Kind: store.OpDelete, Key: k, Value: v}})
}

// DeleteKey returns the command that removes k with all its values.
func DeleteKey(k cid.CID) Command {
	return ApplyBatch([]store.PairOp{{Kind: store.OpDeleteKey, Key: k}})
}

// InsertBatch returns the command that inserts every pair as one atomic
// unit, as Store.InsertBatch does.
func InsertBatch(pairs []store.Pair) Command {
	ops := make([]store.PairOp, len(pairs))
	for i, p := range pairs {
		ops[i] = store.PairOp{Kind: store.OpInsert, Key: p.Key, Value: p.Value}
	}
	return ApplyBatch(ops)
}

// ApplyBatch returns the command that applies a mixed batch of pair
// operations as one atomic unit, in order, as Store.ApplyBatch does.
func ApplyBatch(ops []store.PairOp) Command { return Command{kind: kindPairs, pairs: ops} }

// InsertTriples returns the command that inserts ts as one atomic unit;
// its result counts the triples that were new, as Store.InsertTriples.
func InsertTriples(ts []store.Triple) Command { return tripleCommand(ts, false) }

// DeleteTriples returns the command that deletes ts as one atomic unit;
// its result counts the triples that were present, as
// Store.DeleteTriples.
func DeleteTriples(ts []store.Triple) Command { return tripleCommand(ts, true) }

func tripleCommand(ts []store.Triple, del bool) Command {
	ops := make([]store.TripleOp, len(ts))
	for i, t := range ts {
		ops[i] = store.TripleOp{Delete: del, Triple: t}
	}
	return ApplyTriples(ops)
}

// ApplyTriples returns the command that applies triple inserts and
// deletes as one atomic unit, in order; its result counts the operations
// that changed the store, as Store.ApplyTriples.
func ApplyTriples(ops []store.TripleOp) Command { return Command{kind: kindTriples, triples: ops} }

// Len returns the number of operations in c.
func (c Command) Len() int {
	if c.kind == kindMeta {
		return 1
	}
	return len(c.pairs) + len(c.triples)
}

// validate reports, as the store would, a command the store would refuse:
// an unknown operation, the reserved zero CID, or more operations than
// the store takes in one batch.
func (c Command) validate() error {
	switch {
	case len(c.pairs) > MaxOps:
		return fmt.Errorf("%w: %w: %d operations, at most %d", ErrBadCommand, store.ErrBatchTooLarge, len(c.pairs), MaxOps)
	case len(c.triples) > MaxTripleOps:
		return fmt.Errorf("%w: %w: %d triple operations, at most %d", ErrBadCommand, store.ErrBatchTooLarge, len(c.triples), MaxTripleOps)
	}
	for i, op := range c.pairs {
		if _, ok := pairCode(op.Kind); !ok {
			return fmt.Errorf("%w: operation %d: %w: kind %d", ErrBadCommand, i, store.ErrInvalidOp, op.Kind)
		}
		if op.Key.IsZero() || (op.Kind != store.OpDeleteKey && op.Value.IsZero()) {
			return fmt.Errorf("%w: operation %d: %w", ErrBadCommand, i, store.ErrInvalidCID)
		}
	}
	for i, op := range c.triples {
		if op.S.IsZero() || op.P.IsZero() || op.O.IsZero() {
			return fmt.Errorf("%w: operation %d: %w", ErrBadCommand, i, store.ErrInvalidCID)
		}
	}
	if c.meta != nil && c.meta.ID == "" {
		return fmt.Errorf("%w: metadata without a node ID", ErrBadCommand)
	}
	return nil
}

// pairCode is the format's code of a pair operation kind.
func pairCode(k store.PairOpKind) (uint8, bool) {
	switch k {
	case store.OpInsert:
		return codeInsert, true
	case store.OpDelete:
		return codeDelete, true
	case store.OpDeleteKey:
		return codeDeleteKey, true
	}
	return 0, false
}

// AppendBinary appends the encoding of c (see the format above) to b.
func (c Command) AppendBinary(b []byte) ([]byte, error) {
	if err := c.validate(); err != nil {
		return b, err
	}
	b = append(b, commandVersion, c.kind)
	switch c.kind {
	case kindPairs:
		b = binary.AppendUvarint(b, uint64(len(c.pairs)))
		for _, op := range c.pairs {
			code, _ := pairCode(op.Kind)
			b = append(b, code)
			b = append(b, op.Key[:]...)
			if code != codeDeleteKey {
				b = append(b, op.Value[:]...)
			}
		}
	case kindTriples:
		b = binary.AppendUvarint(b, uint64(len(c.triples)))
		for _, op := range c.triples {
			code := uint8(codeInsert)
			if op.Delete {
				code = codeDelete
			}
			b = append(b, code)
			b = append(b, op.S[:]...)
			b = append(b, op.P[:]...)
			b = append(b, op.O[:]...)
		}
	case kindMeta:
		j, err := json.Marshal(c.meta)
		if err != nil {
			return b, fmt.Errorf("%w: %w", ErrBadCommand, err)
		}
		if len(j) > maxMetaSize {
			return b, fmt.Errorf("%w: metadata of %d bytes, at most %d", ErrBadCommand, len(j), maxMetaSize)
		}
		b = append(b, j...)
	default:
		return b, fmt.Errorf("%w: empty command", ErrBadCommand)
	}
	return b, nil
}

// MarshalBinary returns the encoding of c.
func (c Command) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, c.size()))
}

// size is the length of c's encoding, exact for pair and triple commands.
func (c Command) size() int {
	n := 2 + binary.MaxVarintLen64
	for _, op := range c.pairs {
		n += 1 + cid.Size
		if op.Kind != store.OpDeleteKey {
			n += cid.Size
		}
	}
	return n + len(c.triples)*(1+3*cid.Size)
}

// DecodeCommand decodes one command. It fails with an error wrapping
// ErrUnsupported for another format version or an unknown kind, and with
// one wrapping ErrBadCommand, naming the offset, for anything malformed.
func DecodeCommand(b []byte) (Command, error) {
	c, _, err := decodeCommand(b, nil)
	return c, err
}

// decodeCommand decodes one command. The operations of a pair command are
// appended to pairs, which it returns (grown as needed; cut back to its
// length on failure), so that the state machine can gather the pair
// commands raft hands it together into one batch without copying them.
func decodeCommand(b []byte, pairs []store.PairOp) (Command, []store.PairOp, error) {
	first := len(pairs)
	c, err := decodeInto(b, &pairs)
	if err != nil {
		return Command{}, pairs[:first], err
	}
	return c, pairs, nil
}

func decodeInto(b []byte, pairs *[]store.PairOp) (Command, error) {
	if len(b) < 2 {
		return Command{}, badAt(0, "%d bytes, no header", len(b))
	}
	if b[0] != commandVersion {
		return Command{}, fmt.Errorf("%w: format version %d (this build reads %d)", ErrUnsupported, b[0], commandVersion)
	}
	c := Command{kind: b[1]}
	d := decoder{b: b, off: 2}
	switch c.kind {
	case kindPairs:
		n, err := d.count(1+cid.Size, MaxOps)
		if err != nil {
			return Command{}, err
		}
		first := len(*pairs)
		buf := slices.Grow(*pairs, n)
		defer func() { *pairs = buf }()
		for i := 0; i < n; i++ {
			at := d.off
			var op store.PairOp
			switch code := d.byte(); code {
			case codeInsert, codeDelete:
				op.Kind = store.OpInsert
				if code == codeDelete {
					op.Kind = store.OpDelete
				}
				op.Key, op.Value = d.cid(), d.cid()
			case codeDeleteKey:
				op.Kind, op.Key = store.OpDeleteKey, d.cid()
			default:
				if d.err != nil {
					return Command{}, d.err
				}
				return Command{}, badAt(at, "operation %d has unknown code %d", i, code)
			}
			if d.err != nil {
				return Command{}, d.err
			}
			if op.Key.IsZero() || (op.Kind != store.OpDeleteKey && op.Value.IsZero()) {
				return Command{}, badAt(at, "operation %d names the zero CID", i)
			}
			buf = append(buf, op)
		}
		c.pairs = buf[first:]
	case kindTriples:
		n, err := d.count(1+3*cid.Size, MaxTripleOps)
		if err != nil {
			return Command{}, err
		}
		c.triples = make([]store.TripleOp, 0, n)
		for i := 0; i < n; i++ {
			at := d.off
			code := d.byte()
			if d.err != nil {
				return Command{}, d.err
			}
			if code != codeInsert && code != codeDelete {
				return Command{}, badAt(at, "operation %d has unknown code %d", i, code)
			}
			op := store.TripleOp{Delete: code == codeDelete}
			op.S, op.P, op.O = d.cid(), d.cid(), d.cid()
			if d.err != nil {
				return Command{}, d.err
			}
			if op.S.IsZero() || op.P.IsZero() || op.O.IsZero() {
				return Command{}, badAt(at, "operation %d names the zero CID", i)
			}
			c.triples = append(c.triples, op)
		}
	case kindMeta:
		rest := b[2:]
		if len(rest) > maxMetaSize {
			return Command{}, badAt(2, "metadata of %d bytes, at most %d", len(rest), maxMetaSize)
		}
		var m metaChange
		if err := json.Unmarshal(rest, &m); err != nil {
			return Command{}, badAt(2, "metadata: %v", err)
		}
		if m.ID == "" {
			return Command{}, badAt(2, "metadata without a node ID")
		}
		c.meta = &m
		return c, nil
	default:
		return Command{}, fmt.Errorf("%w: command kind %d", ErrUnsupported, c.kind)
	}
	if d.off != len(b) {
		return Command{}, badAt(d.off, "%d trailing bytes", len(b)-d.off)
	}
	return c, nil
}

func badAt(off int, format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrBadCommand, off, fmt.Sprintf(format, args...))
}

// decoder reads a command; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

// count reads an operation count and checks it against most and the
// bytes left, at opMin bytes per operation.
func (d *decoder) count(opMin, most int) (int, error) {
	n, w := binary.Uvarint(d.b[d.off:])
	if w <= 0 {
		return 0, badAt(d.off, "bad operation count")
	}
	d.off += w
	left := uint64(len(d.b) - d.off)
	switch {
	case n == 0:
		return 0, badAt(d.off-w, "no operations")
	case n > uint64(most):
		return 0, badAt(d.off-w, "%d operations, at most %d", n, most)
	case n > left/uint64(opMin):
		return 0, badAt(d.off-w, "%d operations do not fit %d bytes", n, left)
	}
	return int(n), nil
}

func (d *decoder) byte() uint8 {
	if d.err != nil || d.off >= len(d.b) {
		d.truncated()
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) cid() cid.CID {
	if d.err != nil || len(d.b)-d.off < cid.Size {
		d.truncated()
		return cid.CID{}
	}
	c := cid.CID(d.b[d.off : d.off+cid.Size])
	d.off += cid.Size
	return c
}

func (d *decoder) truncated() {
	if d.err == nil {
		d.err = badAt(d.off, "truncated")
	}
}
