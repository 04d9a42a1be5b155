package server

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// FuzzRESPReader feeds arbitrary bytes to the RESP request reader, once
// in a single read and once a few bytes a read, as a slow client sends
// them. It must never panic; both must see the same requests and the same
// protocol error (if any); a request within the limits has arguments and
// fits the limits. The seed corpus (testdata/fuzz/FuzzRESPReader) holds
// arrays, inline lines (quoted too), pipelines, oversized and broken
// requests.
func FuzzRESPReader(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n",
		"PING\r\nSADD E(1,1) E(2,2)\n\r\n*1\r\n$4\r\nQUIT\r\n",
		"*3\r\n$4\r\nSADD\r\n$600\r\n" + string(bytes.Repeat([]byte("x"), 600)) + "\r\n$1\r\ny\r\n*1\r\n$4\r\nPING\r\n",
		"*20\r\n" + string(bytes.Repeat([]byte("$1\r\nx\r\n"), 20)) + "PING\r\n",
		"*0\r\n*-1\r\n*1\r\n$x\r\n",
		"*1\r\n$3\r\nabcd\r\n",
		"ECHO \"a \\x41\\\"b\" 'c\\'d' e\"f g\"\r\nECHO \"open\r\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	const maxRequest, maxArgs = 512, 16
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		whole, werr := readAll(t, newRESPReader(bytes.NewReader(b), maxRequest, maxArgs))
		slow, serr := readAll(t, newRESPReader(&chunkReader{b: b, n: int(chunk%8) + 1}, maxRequest, maxArgs))
		if werr != serr {
			t.Fatalf("protocol error in one read: %v, a few bytes a read: %v", werr, serr)
		}
		if !slices.EqualFunc(whole, slow, func(a, b [][]byte) bool { return slices.EqualFunc(a, b, bytes.Equal) }) {
			t.Fatalf("in one read %q, a few bytes a read %q", whole, slow)
		}
		for _, args := range whole {
			if args == nil {
				continue // over the limits
			}
			size := 0
			for _, a := range args {
				size += len(a)
			}
			if len(args) == 0 || len(args) > maxArgs || size > maxRequest {
				t.Fatalf("request %q: %d arguments, %d bytes", args, len(args), size)
			}
		}
	})
}

// readAll returns the requests rd reads (nil for one over the limits)
// and whether it ended with a protocol error.
func readAll(t *testing.T, rd *respReader) ([][][]byte, bool) {
	var out [][][]byte
	for range 1 << 20 {
		reqs, err := rd.next()
		for _, q := range reqs {
			if q.tooLarge {
				out = append(out, nil)
				continue
			}
			var args [][]byte
			for _, a := range rd.args(q) {
				args = append(args, bytes.Clone(a))
			}
			out = append(out, args)
		}
		switch {
		case errors.Is(err, errProtocol):
			return out, true
		case err != nil:
			if err != io.EOF {
				t.Fatalf("read error %v", err)
			}
			return out, false
		}
	}
	t.Fatal("the reader does not end")
	return nil, false
}

// chunkReader returns at most n bytes a read.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}
