package server

import (
	"errors"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// respWriter appends RESP replies to a buffer, with redcon's encoders.
// A connection that said HELLO 3 gets RESP3's null, map and set types;
// everything else is the same in both versions.
type respWriter struct {
	b     []byte
	resp3 bool
}

func (w *respWriter) ok()                  { w.b = redcon.AppendOK(w.b) }
func (w *respWriter) simple(s string)      { w.b = redcon.AppendString(w.b, s) }
func (w *respWriter) int(n int)            { w.b = redcon.AppendInt(w.b, int64(n)) }
func (w *respWriter) int64(n int64)        { w.b = redcon.AppendInt(w.b, n) }
func (w *respWriter) bulk(b []byte)        { w.b = redcon.AppendBulk(w.b, b) }
func (w *respWriter) bulkString(s string)  { w.b = redcon.AppendBulkString(w.b, s) }
func (w *respWriter) array(n int)          { w.b = redcon.AppendArray(w.b, n) }
func (w *respWriter) errorString(s string) { w.b = redcon.AppendError(w.b, s) }

// null is a missing value: RESP2's null bulk string, RESP3's null.
func (w *respWriter) null() {
	if w.resp3 {
		w.b = append(w.b, "_\r\n"...)
		return
	}
	w.b = redcon.AppendNull(w.b)
}

// set starts a set of n members (an array in RESP2).
func (w *respWriter) set(n int) { w.aggregate('~', n, n) }

// mapHeader starts a map of n entries (an array of 2n in RESP2).
func (w *respWriter) mapHeader(n int) { w.aggregate('%', n, 2*n) }

// aggregate starts a RESP3 aggregate of type typ and n elements, or in
// RESP2 an array of n2.
func (w *respWriter) aggregate(typ byte, n, n2 int) {
	if !w.resp3 {
		w.array(n2)
		return
	}
	w.b = append(w.b, typ)
	w.b = strconv.AppendInt(w.b, int64(n), 10)
	w.b = append(w.b, '\r', '\n')
}

// cid writes c as a bulk string in the "E(a,b,c,d)" form, without
// allocating.
func (w *respWriter) cid(c cid.CID) {
	var buf [4 + 4*20 + 3]byte
	w.bulk(appendE(buf[:0], c))
}

// appendE appends c's "E(a,b,c,d)" form to b.
func appendE(b []byte, c cid.CID) []byte {
	hi, mh, ml, lo := c.Words()
	b = append(b, 'E', '(')
	b = strconv.AppendUint(b, hi, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, mh, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, ml, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, lo, 10)
	return append(b, ')')
}

// The error replies. A Redis error reply starts with an upper-case code
// word; clients show the rest. An *Error's Code maps onto these codes:
//
//	400 bad request   ERR (WRONGTYPE for a key of another kind)
//	401 no token      NOAUTH
//	403 forbidden     NOPERM
//	413 too large     ERR ... (the message says what was too large)
//	500 internal      ERR internal error: ...
//	503 unavailable   READONLY when the store turned read-only after a
//	                  write failure, else UNAVAILABLE (closing)
func (w *respWriter) err(err error) { w.errorString(respError(err)) }

// respError returns err as the text of a RESP error reply.
func respError(err error) string {
	e := asError(err)
	msg := e.Msg
	switch e.Code {
	case CodeRedirect:
		// As a Redis Cluster node answers for a key it does not serve:
		// "MOVED <slot> <host:port>". CIDStore has no slots, so the slot
		// is always 0; a leader without a RESP endpoint gets a plain error.
		if addr := e.Leader["resp"]; addr != "" {
			return "MOVED 0 " + addr
		}
		return "ERR " + msg
	case CodeUnauthorized:
		return "NOAUTH " + msg
	case CodeForbidden:
		return "NOPERM " + msg
	case CodeInternal:
		return "ERR internal error: " + msg
	case CodeUnavailable:
		if errors.Is(e, store.ErrReadOnly) {
			return "READONLY " + msg
		}
		return "UNAVAILABLE " + msg
	}
	return "ERR " + msg
}

// lowerName writes the lower-case form of a command name into buf and
// returns it; names longer than buf are cut (and then match nothing).
func lowerName(buf []byte, name []byte) []byte {
	n := min(len(buf), len(name))
	for i := range n {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	if len(name) > len(buf) {
		return buf[:0]
	}
	return buf[:n]
}

// clipArg renders an argument for an error message: at most 64 bytes,
// without line breaks.
func clipArg(b []byte) string {
	s := string(b[:min(len(b), 64)])
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(b) > 64 {
		s += "..."
	}
	return s
}
