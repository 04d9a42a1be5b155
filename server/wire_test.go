package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// stream is a ZMTP byte stream after a greeting: messages of frames.
func stream(msgs ...[][]byte) []byte {
	b := make([]byte, greetingSize)
	for _, m := range msgs {
		for i, f := range m {
			b = append(b, frame(f, i == len(m)-1)...)
		}
	}
	return b
}

// scanIn feeds p to a fresh limit in chunks of n bytes and returns the
// offsets at which it reported a broken limit, and the final state.
func scanIn(max uint64, p []byte, n int) ([]int, frameLimit) {
	l := frameLimit{greeting: greetingSize, max: max}
	var broke []int
	for i := 0; i < len(p); i += n {
		if l.scan(p[i:min(i+n, len(p))]) {
			broke = append(broke, i)
		}
	}
	return broke, l
}

func TestFrameLimit(t *testing.T) {
	small := make([]byte, 100)
	big := make([]byte, 3000)
	tests := []struct {
		name   string
		msgs   [][][]byte
		breaks int
	}{
		{"within", [][][]byte{{nil, small}, {small}}, 0},
		{"long frame within", [][][]byte{{big[:300]}}, 0},
		{"one frame over", [][][]byte{{nil, big}}, 1},
		{"over, then within", [][][]byte{{nil, big}, {nil, small}}, 1},
		{"frames over together", [][][]byte{{small, big[:1000], big[:1000]}, {small}}, 1},
		{"too many frames", [][][]byte{make([][]byte, maxFrames+1), {small}}, 1},
		{"two over", [][][]byte{{big}, {small}, {big, small}}, 2},
	}
	for _, tt := range tests {
		s := stream(tt.msgs...)
		for _, n := range []int{1, 2, 3, 7, 64, len(s)} {
			broke, l := scanIn(2048, s, n)
			want := tt.breaks
			if n == len(s) { // one scan reports one break at most
				want = min(want, 1)
			}
			if len(broke) != want || l.discard || l.state != inFlags || l.frames != 0 || l.msg != 0 {
				t.Errorf("%s, chunks of %d: %d breaks (want %d), end state %v", tt.name, n, len(broke), want, &l)
			}
		}
	}
	// A command ends its message even with the more flag.
	s := append(make([]byte, greetingSize), flagCommand|flagMore, 1, 'x')
	if _, l := scanIn(2048, s, 1); l.frames != 0 || l.state != inFlags {
		t.Errorf("after a command: %v", &l)
	}
	// A huge 64-bit length breaks the limit as soon as it is complete.
	hdr := make([]byte, 9)
	hdr[0] = flagLong
	binary.BigEndian.PutUint64(hdr[1:], 1<<63)
	s = append(make([]byte, greetingSize), hdr...)
	broke, l := scanIn(2048, s, 1)
	if len(broke) != 1 || broke[0] != len(s)-1 || !l.discard || l.left != 1<<63 {
		t.Errorf("huge frame: breaks at %v, state %v", broke, &l)
	}
}

// TestWireDiscard: after a refused message the wire skips exactly to the
// next one.
func TestWireDiscard(t *testing.T) {
	s := stream([][]byte{nil, make([]byte, 5000)}, [][]byte{nil, []byte("next")})[greetingSize:]
	var w wire
	w.lim = frameLimit{max: 1024}
	w.r = bufio.NewReader(bytes.NewReader(s))
	w.w = bufio.NewWriter(io.Discard)
	hdr := make([]byte, 2)
	if _, err := w.Read(hdr); err != nil { // the delimiter's header
		t.Fatal(err)
	}
	if _, err := w.Read(hdr); err != nil {
		t.Fatal(err)
	}
	long := make([]byte, 7)
	if _, err := w.Read(long); err != errMessageTooLarge {
		t.Fatalf("Read of the long length = %v", err)
	}
	if _, err := w.Read(hdr); err != errMessageTooLarge {
		t.Fatalf("Read before the discard = %v", err)
	}
	if err := w.DiscardMessage(); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, 2+2+4)
	if _, err := w.Read(rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, append(frame(nil, false), frame([]byte("next"), true)...)) {
		t.Fatalf("after the discard read %q", rest)
	}
}

// TestWireWriteDeadline: a write deadline is set for every write that
// reaches the network, so a large reply after a long idle time does not
// meet the expired deadline of an earlier flush.
func TestWireWriteDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	w := newWire(a, 1<<20, 20*time.Millisecond)
	w.Write([]byte("small"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the idle time under test: the deadline above expires
	if _, err := w.Write(make([]byte, 256<<10)); err != nil {
		t.Fatalf("a large write after an idle time: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}
