package replica

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStream is raft's stream layer over TCP. Unlike raft's own, closing it
// closes every connection it accepted or dialed, so a closed node leaves
// no goroutine behind serving a peer's connection (raft's network
// transport closes only its listener and leaves those to the peer).
type tcpStream struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	done  bool
}

func listenTCP(addr string) (*tcpStream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || a.IP.IsUnspecified() {
		ln.Close()
		return nil, errors.New("replica: the raft address must name a host peers can reach, not " + addr)
	}
	return &tcpStream{ln: ln, conns: map[*trackedConn]struct{}{}}, nil
}

func (s *tcpStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

func (s *tcpStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

func (s *tcpStream) track(c net.Conn) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		c.Close()
		return nil, net.ErrClosed
	}
	t := &trackedConn{Conn: c, s: s}
	s.conns[t] = struct{}{}
	return t, nil
}

func (s *tcpStream) Addr() net.Addr { return s.ln.Addr() }

// Close closes the listener and every connection.
func (s *tcpStream) Close() error {
	s.mu.Lock()
	s.done = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	err := s.ln.Close()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

type trackedConn struct {
	net.Conn
	s    *tcpStream
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}
