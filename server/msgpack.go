package server

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The msgpack protocol of the Python CIDStore. A request is one msgpack
// map; "command" (or, as the Python service also accepted, "op_code")
// names the command, matched without regard to case:
//
//	{"command": "batch_insert", "triples": [{"s": S, "p": P, "o": O}, ...]}
//	{"command": "batch_insert", "entries": [{"key": K, "value": V}, ...]}
//	{"command": "insert", "s": S, "p": P, "o": O}   or   "key": K, "value": V
//	{"command": "delete", "s": S, "p": P, "o": O}   or   "key": K ["value": V]
//	{"command": "batch_delete", "triples": [...]}   or   "entries": [{"key", "value"?}, ...]
//	{"command": "query", "s"?: S, "p"?: P, "o"?: O, "limit"?: N}
//	{"command": "lookup", "key": K}
//	{"command": "metrics"}, {"command": "ping"}
//
// A triple in "triples" may also be a three-element array [S, P, O], and a
// pair in "entries" a two-element array [K, V]. A pair without a value (or
// with nil) in a delete removes the whole key. A missing or nil query
// component is a wildcard; "query" with only "key" is a lookup, as in the
// Python service. Fields the command does not use are ignored.
//
// A CID is any of: the string "E(a,b,c,d)" with four decimal uint64 words;
// the legacy 128-bit "E(h,l)" (words 0, 0, h, l); 64 hex digits; an array
// of four (or two, legacy) unsigned integers, msgpack uint64 or
// non-negative int64 alike; or 32 raw bytes as msgpack bin.
//
// Every reply is a map with "version": "1.0". Success has "status": "ok"
// and, by command, "inserted" or "deleted" (triple mutations: how many
// changed), "results" (query: [[s, p, o], ...] as "E(a,b,c,d)" strings;
// lookup: [v, ...]), "count" (len(results)) and "truncated" (query: more
// matched than the limit). Metrics puts its counters in the map itself.
// Failure is {"status": "error", "error_code": 400|413|500|503,
// "error_msg": "..."}. A replica that is not its cluster's leader answers
// writes (and, with linearizable reads, reads) with "error_code": 307 and
// "leader": the leader's address for this endpoint, such as
// "tcp://127.0.0.1:5565"; nothing was done, and the client retries there.

// apiVersion is the "version" of every reply.
const apiVersion = "1.0"

// maxDepth bounds the nesting of a request, so that skipping an ignored
// field cannot recurse without limit.
const maxDepth = 32

// minTripleBytes is the fewest bytes a triple takes in a request
// ([[h,l],[h,l],[h,l]] with one-byte integers); it caps what a declared
// array length may preallocate.
const minTripleBytes = 10

// msgDecoder decodes requests. It is reused for the requests of one
// connection and is not safe for concurrent use.
type msgDecoder struct {
	rd  bytes.Reader
	d   *msgpack.Decoder
	lim Limits
	txt [maxCIDText]byte // scratch for CID text
	key [16]byte         // scratch for map keys (a stack array would escape)
	f   msgFields
}

// msgFields are the top-level fields of a request, collected before the
// command is known (a map's keys come in any order).
type msgFields struct {
	command, opCode     []byte // the names given, if any
	s, p, o, key, value cid.CID
	has                 uint8 // fieldS | fieldP | ...: present and not nil
	triples, entries    bool  // present
	limit               int
	nameBuf, opBuf      [32]byte
}

const (
	fieldS uint8 = 1 << iota
	fieldP
	fieldO
	fieldKey
	fieldValue
)

func newMsgDecoder(lim Limits) *msgDecoder {
	md := &msgDecoder{lim: lim.withDefaults()}
	md.d = msgpack.NewDecoder(&md.rd)
	return md
}

// bad returns a 400 error.
func bad(format string, args ...any) *Error { return errorf(CodeBadRequest, format, args...) }

// malformed wraps a decoding failure of the msgpack stream itself.
func malformed(err error) *Error { return bad("malformed msgpack: %v", err) }

// decode decodes one request into c. A failure is an *Error.
func (md *msgDecoder) decode(b []byte, c *Command) error {
	c.Reset()
	md.f = msgFields{}
	md.rd.Reset(b)
	md.d.Reset(&md.rd)
	if len(b) == 0 {
		return bad("empty message")
	}
	code, err := md.d.PeekCode()
	if err != nil {
		return malformed(err)
	}
	if !isMap(code) {
		return bad("the message is not a msgpack map (first byte 0x%02x)", code)
	}
	n, err := md.d.DecodeMapLen()
	if err != nil {
		return malformed(err)
	}
	for range n {
		if err := md.field(c); err != nil {
			return err
		}
	}
	if md.rd.Len() != 0 {
		return bad("%d bytes after the message map", md.rd.Len())
	}
	return md.build(c)
}

func isMap(code byte) bool {
	return msgpcode.IsFixedMap(code) || code == msgpcode.Map16 || code == msgpcode.Map32
}

func isArray(code byte) bool {
	return msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32
}

// peek returns the msgpack code of the next value. A nil is consumed and
// reported as isNil.
func (md *msgDecoder) peek() (code byte, isNil bool, err error) {
	if code, err = md.d.PeekCode(); err != nil {
		return 0, false, malformed(err)
	}
	if code == msgpcode.Nil {
		return code, true, md.d.DecodeNil()
	}
	return code, false, nil
}

// readText reads a str or bin value of at most len(buf) bytes into buf.
// It reports nil as ok with nil bytes.
func (md *msgDecoder) readText(buf []byte, what string) ([]byte, error) {
	code, isNil, err := md.peek()
	if err != nil || isNil {
		return nil, err
	}
	if !msgpcode.IsString(code) && !msgpcode.IsBin(code) {
		return nil, bad("%s: want a string", what)
	}
	n, err := md.d.DecodeBytesLen()
	if err != nil {
		return nil, malformed(err)
	}
	if n > len(buf) {
		return nil, bad("%s: string of %d bytes, at most %d", what, n, len(buf))
	}
	if err := md.d.ReadFull(buf[:n]); err != nil {
		return nil, malformed(err)
	}
	return buf[:n], nil
}

// mapKey decodes a map key into buf. A key that is not a string, or is
// longer than buf, is skipped and returned as nil: no field has such a
// name.
func (md *msgDecoder) mapKey(buf []byte, depth int) ([]byte, error) {
	code, err := md.d.PeekCode()
	if err != nil {
		return nil, malformed(err)
	}
	if !msgpcode.IsString(code) && !msgpcode.IsBin(code) {
		return nil, md.skip(depth)
	}
	n, err := md.d.DecodeBytesLen()
	if err != nil {
		return nil, malformed(err)
	}
	if n > len(buf) {
		return nil, md.skipBytes(n)
	}
	if err := md.d.ReadFull(buf[:n]); err != nil {
		return nil, malformed(err)
	}
	return buf[:n], nil
}

// field decodes one key and value of the request map.
func (md *msgDecoder) field(c *Command) error {
	key, err := md.mapKey(md.key[:], 1)
	if err != nil {
		return err
	}
	f := &md.f
	switch string(key) {
	case "command":
		f.command, err = md.readText(f.nameBuf[:], "command")
	case "op_code":
		f.opCode, err = md.readText(f.opBuf[:], "op_code")
	case "s":
		err = md.topCID(&f.s, fieldS, "s")
	case "p":
		err = md.topCID(&f.p, fieldP, "p")
	case "o":
		err = md.topCID(&f.o, fieldO, "o")
	case "key":
		err = md.topCID(&f.key, fieldKey, "key")
	case "value":
		err = md.topCID(&f.value, fieldValue, "value")
	case "triples":
		f.triples = true
		err = md.triples(c)
	case "entries":
		f.entries = true
		err = md.entries(c)
	case "limit":
		err = md.limit()
	default:
		err = md.skip(1)
	}
	return err
}

func (md *msgDecoder) topCID(dst *cid.CID, bit uint8, name string) error {
	c, isNil, err := md.cid(name, -1, "")
	if err != nil {
		return err
	}
	*dst = c
	if !isNil {
		md.f.has |= bit
	}
	return nil
}

func (md *msgDecoder) limit() error {
	code, isNil, err := md.peek()
	if err != nil || isNil {
		return err
	}
	if !isInt(code) {
		return bad("limit: want an integer")
	}
	v, err := md.d.DecodeInt64()
	if err != nil {
		return malformed(err)
	}
	if v < 0 || (isUint(code) && v > 1<<62) {
		return bad("limit: want a non-negative integer")
	}
	md.f.limit = int(min(v, 1<<31))
	return nil
}

func isUint(code byte) bool {
	return code <= msgpcode.PosFixedNumHigh || (code >= msgpcode.Uint8 && code <= msgpcode.Uint64)
}

func isInt(code byte) bool {
	return isUint(code) || code >= msgpcode.NegFixedNumLow || (code >= msgpcode.Int8 && code <= msgpcode.Int64)
}

// cid decodes one CID value. isNil reports a msgpack nil. list, idx and
// field name where the value sits, for error messages.
func (md *msgDecoder) cid(list string, idx int, field string) (c cid.CID, isNil bool, err error) {
	where := func() string {
		switch {
		case idx < 0:
			return list
		case field == "":
			return fmt.Sprintf("%s[%d]", list, idx)
		}
		return fmt.Sprintf("%s[%d].%s", list, idx, field)
	}
	code, isNil, err := md.peek()
	if err != nil || isNil {
		return cid.Zero, isNil, err
	}
	switch {
	case msgpcode.IsString(code) || msgpcode.IsBin(code):
		n, err := md.d.DecodeBytesLen()
		if err != nil {
			return cid.Zero, false, malformed(err)
		}
		if n > len(md.txt) {
			return cid.Zero, false, bad("%s: CID text of %d bytes, at most %d", where(), n, len(md.txt))
		}
		b := md.txt[:n]
		if err := md.d.ReadFull(b); err != nil {
			return cid.Zero, false, malformed(err)
		}
		if msgpcode.IsBin(code) && n == cid.Size {
			return cid.CID(b), false, nil
		}
		c, err := parseCIDText(b)
		if err != nil {
			return cid.Zero, false, bad("%s: %v", where(), err)
		}
		return c, false, nil
	case isArray(code):
		n, err := md.d.DecodeArrayLen()
		if err != nil {
			return cid.Zero, false, malformed(err)
		}
		if n != 4 && n != 2 {
			return cid.Zero, false, bad("%s: a CID as a list has 4 words (or 2), not %d", where(), n)
		}
		var w [4]uint64
		for i := 4 - n; i < 4; i++ {
			if w[i], err = md.word(); err != nil {
				return cid.Zero, false, bad("%s: word %d: %v", where(), i-(4-n), err)
			}
		}
		return cid.FromWords(w[0], w[1], w[2], w[3]), false, nil
	}
	return cid.Zero, false, bad("%s: want a CID (\"E(a,b,c,d)\", 64 hex digits or a list of words), got msgpack type 0x%02x", where(), code)
}

// word decodes one unsigned 64-bit CID word.
func (md *msgDecoder) word() (uint64, error) {
	code, err := md.d.PeekCode()
	if err != nil {
		return 0, err
	}
	switch {
	case isUint(code):
		return md.d.DecodeUint64()
	case isInt(code):
		v, err := md.d.DecodeInt64()
		if err == nil && v < 0 {
			err = fmt.Errorf("negative word %d", v)
		}
		return uint64(v), err
	}
	return 0, fmt.Errorf("want an unsigned integer, got msgpack type 0x%02x", code)
}

// batch decodes the array of a batch field (name: "triples" or
// "entries"), bounded by the batch limit: grow is told how many items to
// preallocate, then item decodes each, a map or (asMap false) an array.
func (md *msgDecoder) batch(name, shape string, limit int, grow func(n int), item func(i int, asMap bool) error) error {
	code, isNil, err := md.peek()
	if err != nil || isNil {
		return err
	}
	if !isArray(code) {
		return bad("%s: want an array", name)
	}
	n, err := md.d.DecodeArrayLen()
	if err != nil {
		return malformed(err)
	}
	if n > limit {
		return errorf(CodeTooLarge, "%s: %d items, at most %d in one batch", name, n, limit)
	}
	grow(min(n, md.rd.Len()/minTripleBytes+1))
	for i := range n {
		code, err := md.d.PeekCode()
		if err != nil {
			return malformed(err)
		}
		if !isMap(code) && !isArray(code) {
			return bad("%s[%d]: want %s", name, i, shape)
		}
		if err := item(i, isMap(code)); err != nil {
			return err
		}
	}
	return nil
}

// triples decodes the "triples" array into c.Triples.
func (md *msgDecoder) triples(c *Command) error {
	return md.batch("triples", "a map {s, p, o} or an array [s, p, o]", md.lim.batchLimit(true),
		func(n int) { c.Triples = slices.Grow(c.Triples[:0], n) },
		func(i int, asMap bool) error {
			var t Triple
			var err error
			if asMap {
				err = md.tripleMap(&t, i)
			} else {
				err = md.tripleArray(&t, i)
			}
			c.Triples = append(c.Triples, t)
			return err
		})
}

func (md *msgDecoder) tripleMap(t *Triple, i int) error {
	n, err := md.d.DecodeMapLen()
	if err != nil {
		return malformed(err)
	}
	var seen uint8
	for range n {
		k, err := md.mapKey(md.key[:], 2)
		if err != nil {
			return err
		}
		var dst *cid.CID
		var bit uint8
		var name string
		switch string(k) {
		case "s":
			dst, bit, name = &t.S, fieldS, "s"
		case "p":
			dst, bit, name = &t.P, fieldP, "p"
		case "o":
			dst, bit, name = &t.O, fieldO, "o"
		default:
			if err := md.skip(2); err != nil {
				return err
			}
			continue
		}
		c, isNil, err := md.cid("triples", i, name)
		if err != nil {
			return err
		}
		if !isNil {
			*dst = c
			seen |= bit
		}
	}
	if missing := missingSPO(seen); missing != "" {
		return bad("triples[%d]: missing %s", i, missing)
	}
	return nil
}

func (md *msgDecoder) tripleArray(t *Triple, i int) error {
	n, err := md.d.DecodeArrayLen()
	if err != nil {
		return malformed(err)
	}
	if n != 3 {
		return bad("triples[%d]: an array triple has 3 CIDs, not %d", i, n)
	}
	for j := range 3 {
		name := "spo"[j : j+1]
		c, isNil, err := md.cid("triples", i, name)
		if err != nil {
			return err
		}
		if isNil {
			return bad("triples[%d]: missing %s", i, name)
		}
		switch j {
		case 0:
			t.S = c
		case 1:
			t.P = c
		default:
			t.O = c
		}
	}
	return nil
}

// missingSPO names the components of a triple not in seen.
func missingSPO(seen uint8) string {
	var m []byte
	for j, bit := range []uint8{fieldS, fieldP, fieldO} {
		if seen&bit == 0 {
			if len(m) > 0 {
				m = append(m, ", "...)
			}
			m = append(m, "spo"[j])
		}
	}
	return string(m)
}

// entries decodes the "entries" array into c.Pairs. The kind of each is
// settled by build once the command is known: OpInsert for an entry with
// a value (OpDelete in a delete), OpDeleteKey without.
func (md *msgDecoder) entries(c *Command) error {
	return md.batch("entries", "a map {key, value} or an array [key, value]", md.lim.batchLimit(false),
		func(n int) { c.Pairs = slices.Grow(c.Pairs[:0], n) },
		func(i int, asMap bool) error {
			p := store.PairOp{Kind: store.OpInsert}
			var hasValue bool
			var err error
			if asMap {
				hasValue, err = md.entryMap(&p, i)
			} else {
				hasValue, err = md.entryArray(&p, i)
			}
			if !hasValue {
				p.Kind = store.OpDeleteKey
			}
			c.Pairs = append(c.Pairs, p)
			return err
		})
}

func (md *msgDecoder) entryMap(p *store.PairOp, i int) (hasValue bool, err error) {
	n, err := md.d.DecodeMapLen()
	if err != nil {
		return false, malformed(err)
	}
	hasKey := false
	for range n {
		k, err := md.mapKey(md.key[:], 2)
		if err != nil {
			return false, err
		}
		isKey := string(k) == "key"
		if !isKey && string(k) != "value" {
			if err := md.skip(2); err != nil {
				return false, err
			}
			continue
		}
		name := "value"
		if isKey {
			name = "key"
		}
		c, isNil, err := md.cid("entries", i, name)
		if err != nil {
			return false, err
		}
		if isKey {
			p.Key, hasKey = c, !isNil
		} else {
			p.Value, hasValue = c, !isNil
		}
	}
	if !hasKey {
		return false, bad("entries[%d]: missing key", i)
	}
	return hasValue, nil
}

func (md *msgDecoder) entryArray(p *store.PairOp, i int) (hasValue bool, err error) {
	n, err := md.d.DecodeArrayLen()
	if err != nil {
		return false, malformed(err)
	}
	if n != 1 && n != 2 {
		return false, bad("entries[%d]: an array entry is [key, value] or [key], not %d items", i, n)
	}
	c, isNil, err := md.cid("entries", i, "key")
	if err != nil {
		return false, err
	}
	if isNil {
		return false, bad("entries[%d]: missing key", i)
	}
	p.Key = c
	if n == 2 {
		if p.Value, isNil, err = md.cid("entries", i, "value"); err != nil {
			return false, err
		}
		hasValue = !isNil
	}
	return hasValue, nil
}

// skipBytes skips n bytes of the message.
func (md *msgDecoder) skipBytes(n int) error {
	if n > md.rd.Len() {
		return malformed(fmt.Errorf("string of %d bytes runs past the message", n))
	}
	_, err := md.rd.Seek(int64(n), 1)
	return err
}

// skip skips one value at nesting depth depth, refusing to nest deeper
// than maxDepth.
func (md *msgDecoder) skip(depth int) error {
	if depth > maxDepth {
		return bad("nested deeper than %d levels", maxDepth)
	}
	code, err := md.d.PeekCode()
	if err != nil {
		return malformed(err)
	}
	var n int
	switch {
	case isArray(code):
		if n, err = md.d.DecodeArrayLen(); err != nil {
			return malformed(err)
		}
	case isMap(code):
		if n, err = md.d.DecodeMapLen(); err != nil {
			return malformed(err)
		}
		n *= 2
	case msgpcode.IsString(code) || msgpcode.IsBin(code):
		if n, err = md.d.DecodeBytesLen(); err != nil {
			return malformed(err)
		}
		return md.skipBytes(max(n, 0))
	default:
		if err := md.d.Skip(); err != nil {
			return malformed(err)
		}
		return nil
	}
	for range n {
		if err := md.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// build turns the collected fields into the command.
func (md *msgDecoder) build(c *Command) error {
	f := &md.f
	name := f.command
	if len(name) == 0 {
		name = f.opCode
	}
	if len(name) == 0 {
		return bad(`missing "command" (or "op_code")`)
	}
	op, ok := LookupOp(string(name))
	if !ok || op >= OpApply {
		// The commands from OpApply on have no msgpack request form.
		return bad("unknown command %q", name)
	}
	c.Op = op
	has := func(bits uint8) bool { return f.has&bits == bits }
	anySPO := f.has&(fieldS|fieldP|fieldO) != 0
	switch op {
	case OpInsert, OpDelete:
		c.Triples, c.Pairs = c.Triples[:0], c.Pairs[:0]
		switch {
		case anySPO:
			if m := missingSPO(f.has); m != "" {
				return bad("%s: missing %s", op, m)
			}
			c.Triples = append(c.Triples, Triple{S: f.s, P: f.p, O: f.o})
		case has(fieldKey):
			p := store.PairOp{Kind: store.OpInsert, Key: f.key, Value: f.value}
			switch {
			case op == OpDelete && has(fieldValue):
				p.Kind = store.OpDelete
			case op == OpDelete:
				p.Kind = store.OpDeleteKey
			case !has(fieldValue):
				return bad("insert: missing value")
			}
			c.Pairs = append(c.Pairs, p)
		default:
			return bad("%s: want s, p and o, or key and value", op)
		}
	case OpBatchInsert, OpBatchDelete:
		switch {
		case f.triples && f.entries:
			return bad("%s: send triples or entries, not both", op)
		case !f.triples && !f.entries:
			return bad(`%s: missing "triples" (or "entries")`, op)
		}
		for i := range c.Pairs {
			p := &c.Pairs[i]
			switch {
			case op == OpBatchDelete && p.Kind == store.OpInsert:
				p.Kind = store.OpDelete
			case op == OpBatchInsert && p.Kind == store.OpDeleteKey:
				return bad("entries[%d]: missing value", i)
			}
		}
	case OpQuery:
		if !anySPO && has(fieldKey) {
			c.Op, c.Key = OpLookup, f.key
			return nil
		}
		c.Pattern = Triple{S: f.s, P: f.p, O: f.o}
		c.Limit = f.limit
	case OpLookup:
		switch {
		case has(fieldKey):
			c.Key = f.key
		case has(fieldS):
			c.Key = f.s
		default:
			return bad("lookup: missing key")
		}
	}
	if op != OpBatchInsert && op != OpBatchDelete && op != OpInsert && op != OpDelete {
		c.Triples, c.Pairs = c.Triples[:0], c.Pairs[:0]
	}
	return nil
}
