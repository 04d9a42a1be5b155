package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// The RESP request reader. Clients send requests as arrays of bulk
// strings ("*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n"), or, from a terminal, as
// inline lines of words separated by spaces, quoted as Redis quotes them
// ("PING hi\r\n", "ECHO \"a b\"\r\n"; respinline.go). A client may
// send many requests before reading a reply (pipelining): the reader
// returns every request that is complete in its buffer at once, so that
// the connection can apply them together and answer them with one write.
//
// Every size is bounded before memory is committed to it: a request's
// declared size (the bulk lengths and their headers) is added up as the
// headers arrive, and a request over the limit is skipped without
// buffering it, bulk by bulk, and answered with an error; the connection
// stays usable. Inline requests are bounded likewise, and a line longer
// than maxInline is a protocol error. Malformed
// framing (a header that is not a number, a missing CRLF) cannot be
// skipped reliably: it is a protocol error that ends the connection after
// an error reply, as Redis does.

// maxInline bounds an inline request line, as Redis's PROTO_INLINE_MAX_SIZE.
const maxInline = 64 << 10

// respReadBuf is the reader's initial buffer, and the size it returns to
// after a larger request.
const respReadBuf = 16 << 10

// errProtocol marks framing the reader cannot recover from.
var errProtocol = errors.New("Protocol error")

func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// respReq is one request: its arguments, or, for a request over the size
// limit, tooLarge and no arguments.
type respReq struct {
	lo, hi   int // its arguments are argv[lo:hi]
	tooLarge bool
}

// respReader parses the requests of one connection. The arguments it
// returns point into its buffer and stay valid until the next call of
// next.
type respReader struct {
	r       io.Reader
	buf     []byte
	pos     int // bytes before pos are parsed
	end     int // bytes before end are read
	max     int // the most bytes one request may take
	maxArgs int // the most arguments one request may have

	argv [][]byte
	reqs []respReq
	part partial

	// An oversized request being skipped: skipArgs bulks are left after
	// the current one, of which skipBytes bytes are left (CRLF included;
	// -1: its header is not read yet).
	skipping  bool
	skipArgs  int
	skipBytes int
}

func newRESPReader(r io.Reader, maxRequest, maxArgs int) *respReader {
	return &respReader{r: r, buf: make([]byte, respReadBuf), max: maxRequest, maxArgs: maxArgs}
}

// args returns the arguments of q.
func (rd *respReader) args(q respReq) [][]byte { return rd.argv[q.lo:q.hi] }

// next returns the requests complete in the buffer, reading from the
// connection until there is at least one. A read error is returned with
// no requests; a protocol error is returned after the requests that
// preceded it.
func (rd *respReader) next() ([]respReq, error) {
	rd.argv, rd.reqs = rd.argv[:0], rd.reqs[:0]
	for {
		err := rd.parse()
		if len(rd.reqs) > 0 || err != nil {
			return rd.reqs, err
		}
		if err := rd.fill(); err != nil {
			return nil, err
		}
	}
}

// fill moves the unparsed bytes to the front of the buffer, grows it if
// it is full, and reads once.
func (rd *respReader) fill() error {
	if rd.pos > 0 {
		rd.end = copy(rd.buf, rd.buf[rd.pos:rd.end])
		rd.pos = 0
	}
	if rd.end == 0 && len(rd.buf) > respReadBuf {
		rd.buf = make([]byte, respReadBuf) // let a large request's buffer go
	}
	if rd.end == len(rd.buf) {
		// Only a request within the limit is buffered whole (the parser
		// skips larger ones), so this stays about the limit.
		nb := make([]byte, 2*len(rd.buf))
		copy(nb, rd.buf[:rd.end])
		rd.buf = nb
	}
	n, err := rd.r.Read(rd.buf[rd.end:])
	rd.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// parse appends the complete requests in the buffer to rd.reqs.
func (rd *respReader) parse() error {
	for rd.pos < rd.end {
		if rd.skipping {
			done, err := rd.skip()
			if err != nil || !done {
				return err
			}
			rd.reqs = append(rd.reqs, respReq{tooLarge: true})
			continue
		}
		var ok bool
		var err error
		if rd.part.active || rd.buf[rd.pos] == '*' {
			ok, err = rd.parseArray()
		} else {
			ok, err = rd.parseInline()
		}
		if err != nil || !ok {
			return err
		}
	}
	return nil
}

// line returns the line starting at off without its CRLF, and the offset
// after it; ok is false when the line is not complete yet. A line longer
// than limit is a protocol error.
func (rd *respReader) line(off, limit int) (line []byte, next int, ok bool, err error) {
	b := rd.buf[off:rd.end]
	i := bytes.IndexByte(b[:min(len(b), limit+2)], '\n')
	if i < 0 {
		if len(b) >= limit+2 {
			return nil, 0, false, protocolError("too big request header")
		}
		return nil, 0, false, nil
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, 0, false, protocolError("expected CRLF")
	}
	return b[:i-1], off + i + 1, true, nil
}

// headerMax bounds a "*n" or "$n" header line.
const headerMax = 32

// parseInt reads a decimal header number, or fails.
func parseInt(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseArray parses one "*n" request at rd.pos. ok is false when it is
// not complete yet; what was parsed of it is kept in rd.part (as offsets
// from rd.pos, which fill's compaction preserves), so a request that
// arrives in many reads is parsed once.
func (rd *respReader) parseArray() (ok bool, err error) {
	p := &rd.part
	if !p.active {
		hdr, off, ok, err := rd.line(rd.pos+1, headerMax)
		if !ok {
			return false, err
		}
		n, valid := parseInt(hdr)
		if !valid {
			return false, protocolError("invalid multibulk length")
		}
		if n <= 0 { // "*0" and "*-1": nothing to do, as in Redis
			rd.pos = off
			return true, nil
		}
		*p = partial{active: true, n: n, off: off - rd.pos, spans: p.spans[:0]}
		p.size = p.off
	}
	for p.j < p.n {
		off := rd.pos + p.off
		l, next, ok, err := rd.bulkHeader(off)
		if !ok {
			return false, err
		}
		size := p.size + next - off + l + 2
		if size > rd.max || p.n > rd.maxArgs {
			// Too large: skip this bulk's data and the bulks after it.
			rd.skipping, rd.skipArgs, rd.skipBytes = true, p.n-p.j-1, l+2
			rd.pos, p.active = next, false
			return true, nil
		}
		if next+l+2 > rd.end {
			return false, nil
		}
		if rd.buf[next+l] != '\r' || rd.buf[next+l+1] != '\n' {
			return false, protocolError("invalid bulk length")
		}
		p.spans = append(p.spans, next-rd.pos, next+l-rd.pos)
		p.off, p.size = next+l+2-rd.pos, size
		p.j++
	}
	lo := len(rd.argv)
	for i := 0; i < len(p.spans); i += 2 {
		a, b := rd.pos+p.spans[i], rd.pos+p.spans[i+1]
		rd.argv = append(rd.argv, rd.buf[a:b:b])
	}
	rd.pos += p.off
	p.active = false
	rd.reqs = append(rd.reqs, respReq{lo: lo, hi: len(rd.argv)})
	return true, nil
}

// bulkHeader reads the "$n" header of a bulk string at off: the length n
// and the offset of its data; ok is false when the header is not complete
// yet.
func (rd *respReader) bulkHeader(off int) (n, next int, ok bool, err error) {
	if off >= rd.end {
		return 0, 0, false, nil
	}
	if rd.buf[off] != '$' {
		return 0, 0, false, protocolError("expected '$', got '%c'", rd.buf[off])
	}
	hdr, next, ok, err := rd.line(off+1, headerMax)
	if !ok {
		return 0, 0, false, err
	}
	n, valid := parseInt(hdr)
	if !valid || n < 0 {
		return 0, 0, false, protocolError("invalid bulk length")
	}
	return n, next, true, nil
}

// partial is the progress of an array request not yet complete.
type partial struct {
	active bool
	n, j   int   // arguments declared and parsed
	off    int   // where the next argument's header starts, from rd.pos
	size   int   // bytes of the request so far, headers included
	spans  []int // start and end of each parsed argument, from rd.pos
}

// skip discards the rest of an oversized request as far as the buffer
// goes and reports whether it is all gone. Its bulks are counted, not
// kept, but their headers must be well formed: otherwise where the
// request ends, and the next begins, is unknown, which is a protocol
// error as anywhere else.
func (rd *respReader) skip() (bool, error) {
	for {
		if rd.skipBytes > 0 {
			d := min(rd.skipBytes, rd.end-rd.pos)
			rd.pos += d
			rd.skipBytes -= d
			if rd.skipBytes > 0 {
				return false, nil
			}
		}
		if rd.skipArgs == 0 {
			rd.skipping = false
			return true, nil
		}
		l, next, ok, err := rd.bulkHeader(rd.pos)
		if !ok {
			return false, err
		}
		rd.pos = next
		rd.skipArgs--
		rd.skipBytes = l + 2
	}
}

// parseInline parses one inline request: words as splitInline reads
// them, ending with LF (or CRLF). Empty lines are ignored.
func (rd *respReader) parseInline() (ok bool, err error) {
	b := rd.buf[rd.pos:rd.end]
	i := bytes.IndexByte(b[:min(len(b), maxInline+1)], '\n')
	if i < 0 {
		if len(b) > maxInline {
			return false, protocolError("too big inline request")
		}
		return false, nil
	}
	line := b[:i]
	rd.pos += i + 1
	if len(line) > rd.max {
		rd.reqs = append(rd.reqs, respReq{tooLarge: true})
		return true, nil
	}
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	lo := len(rd.argv)
	argv, tooMany, err := splitInline(line, rd.argv, rd.maxArgs)
	if err != nil {
		return false, err
	}
	rd.argv = argv
	if tooMany {
		rd.reqs = append(rd.reqs, respReq{tooLarge: true})
		return true, nil
	}
	if len(rd.argv) > lo {
		rd.reqs = append(rd.reqs, respReq{lo: lo, hi: len(rd.argv)})
	}
	return true, nil
}
