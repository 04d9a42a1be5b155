package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// errMessageTooLarge is what a wire's Read returns when a peer starts a
// message over the size limit or with too many frames. zmq4's Conn.RecvMsg
// passes it on (wrapped) before it allocates the frame; the connection
// survives: DiscardMessage skips the rest of the message.
var errMessageTooLarge = errors.New("message over the size limit")

// maxFrames bounds the frames of one message: a REQ envelope, a delimiter
// and the body need three; routing through proxies adds a few.
const maxFrames = 16

// frameOverhead is what each frame costs against the size limit beyond
// its body, so that many empty frames cannot slip under it.
const frameOverhead = 64

// greetingSize is the length of the ZMTP 3 greeting, which precedes the
// frames.
const greetingSize = 64

// wire is the net.Conn a zmq4 ZMTP connection runs over. It does two
// things zmq4 does not:
//
//   - It bounds what a peer can make the server allocate. zmq4 trusts a
//     frame's 64-bit length and allocates it before reading the body, so a
//     nine-byte header could exhaust memory. The wire parses the ZMTP
//     framing of what it reads (flags, then a 1- or 8-byte length, then
//     the body; see https://rfc.zeromq.org/spec/23/) and fails the read
//     that would deliver a length taking the message over its limit.
//   - It buffers writes, which zmq4 issues as two syscalls per frame: the
//     owner calls Flush after sending a message, and any Read flushes
//     first, so a handshake reply is never left behind.
type wire struct {
	net.Conn
	r       *bufio.Reader
	wmu     sync.Mutex
	w       *bufio.Writer
	lim     frameLimit
	timeout time.Duration // write deadline of each flush; 0: none
}

func newWire(nc net.Conn, maxMessage int, writeTimeout time.Duration) *wire {
	return &wire{
		Conn:    nc,
		r:       bufio.NewReaderSize(nc, 64<<10),
		w:       bufio.NewWriterSize(nc, 64<<10),
		lim:     frameLimit{greeting: greetingSize, max: uint64(maxMessage)},
		timeout: writeTimeout,
	}
}

// Read reads from the peer through the frame limit.
func (w *wire) Read(p []byte) (int, error) {
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if w.lim.discard {
		return 0, errMessageTooLarge
	}
	n, err := w.r.Read(p)
	if n > 0 && w.lim.scan(p[:n]) {
		return 0, errMessageTooLarge
	}
	return n, err
}

// Write buffers p until Flush. A p larger than the buffer's room goes
// out at once, under a fresh write deadline.
func (w *wire) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if len(p) > w.w.Available() {
		if err := w.deadline(); err != nil {
			return 0, err
		}
	}
	return w.w.Write(p)
}

// deadline sets the write deadline of the next write to the network. The
// caller holds wmu.
func (w *wire) deadline() error {
	if w.timeout <= 0 {
		return nil
	}
	return w.Conn.SetWriteDeadline(time.Now().Add(w.timeout))
}

// Flush sends what Write buffered.
func (w *wire) Flush() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.w.Buffered() == 0 {
		return nil
	}
	if err := w.deadline(); err != nil {
		return err
	}
	return w.w.Flush()
}

// DiscardMessage reads and drops the rest of a message that Read refused
// as too large, so that the next Read starts at the next message.
func (w *wire) DiscardMessage() error {
	var one [1]byte
	for w.lim.discard {
		if w.lim.state == inBody {
			n := min(w.lim.left, 1<<20)
			if _, err := w.r.Discard(int(n)); err != nil {
				return err
			}
			w.lim.body(n)
			continue
		}
		b, err := w.r.ReadByte()
		if err != nil {
			return err
		}
		one[0] = b
		w.lim.scan(one[:])
	}
	return nil
}

// frameLimit follows the ZMTP framing of a byte stream and reports the
// first byte that makes a message too large.
type frameLimit struct {
	greeting int    // greeting bytes still to pass
	max      uint64 // bytes allowed per message, frame overheads included
	state    uint8  // inFlags, inSize or inBody
	flags    byte   // of the current frame
	sizeLen  int    // length bytes of the current frame: 1 or 8
	sizeBuf  [8]byte
	sizeHave int
	left     uint64 // body bytes of the current frame still to come
	msg      uint64 // bytes the current message has used
	frames   int    // frames of the current message so far
	discard  bool   // the current message broke the limit
}

const (
	inFlags = iota
	inSize
	inBody
)

const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

// scan follows p, the next bytes of the stream, and reports whether a
// message broke the limit within them. From then on discard is set until
// that message's last frame has passed.
func (l *frameLimit) scan(p []byte) (broke bool) {
	if l.greeting > 0 {
		n := min(l.greeting, len(p))
		l.greeting -= n
		p = p[n:]
	}
	for len(p) > 0 {
		switch l.state {
		case inFlags:
			l.flags = p[0]
			p = p[1:]
			l.sizeLen, l.sizeHave = 1, 0
			if l.flags&flagLong != 0 {
				l.sizeLen = 8
			}
			l.state = inSize
			if l.frames++; l.frames > maxFrames && !l.discard {
				l.discard, broke = true, true
			}
		case inSize:
			n := copy(l.sizeBuf[l.sizeHave:l.sizeLen], p)
			l.sizeHave += n
			p = p[n:]
			if l.sizeHave < l.sizeLen {
				continue
			}
			size := uint64(l.sizeBuf[0])
			if l.sizeLen == 8 {
				size = binary.BigEndian.Uint64(l.sizeBuf[:])
			}
			l.left = size
			if size > l.max || l.msg+size+frameOverhead > l.max {
				if !l.discard {
					l.discard, broke = true, true
				}
			} else {
				l.msg += size + frameOverhead
			}
			l.state = inBody
			if size == 0 {
				l.body(0)
			}
		case inBody:
			n := min(l.left, uint64(len(p)))
			p = p[n:]
			l.body(n)
		}
	}
	return broke
}

// body records n bytes of the current frame's body; at its end the frame,
// and with its last frame the message, is complete.
func (l *frameLimit) body(n uint64) {
	l.left -= n
	if l.left > 0 {
		return
	}
	l.state = inFlags
	if l.flags&flagMore == 0 || l.flags&flagCommand != 0 {
		l.msg, l.frames, l.discard = 0, 0, false
	}
}

func (l *frameLimit) String() string {
	return fmt.Sprintf("state %d, %d frames, %d bytes, discard %v", l.state, l.frames, l.msg, l.discard)
}
