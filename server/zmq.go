package server

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
)

// The ZeroMQ endpoints are served with zmq4's ZMTP connection layer
// (zmq4.Conn: greeting, NULL handshake, framing) under the server's own
// listener and one goroutine per connection, instead of zmq4's ROUTER,
// PULL and PUB sockets. Those funnel every connection through one queue
// and one send lock, so one slow client stalls the rest; they run the
// handshake inside the accept loop without a deadline, so one silent
// client stops all new connections; they allocate whatever frame length a
// peer announces; and a malformed handshake panics in a goroutine the
// application cannot recover. Here each connection is handled on its own
// goroutine, handshakes have a deadline and cannot crash the server, and
// the wire (zmqwire.go) bounds every message.

// endpoint is one bound ZeroMQ address.
type endpoint struct {
	name  string          // "zmq", "push", "router" or "pub": metrics label
	typ   zmq4.SocketType // the socket type the server presents
	ln    net.Listener
	serve func(*zconn) // runs a connection after its handshake
}

// zconn is one ZMTP connection of an endpoint.
type zconn struct {
	ep *endpoint
	nc net.Conn
	w  *wire
	zc *zmq4.Conn
}

// listen binds a ZeroMQ endpoint: "tcp://host:port" or "ipc://path".
// "tcp://*:port" binds every interface, which must be asked for
// explicitly.
func listen(addr string) (net.Listener, error) {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, fmt.Errorf("endpoint %q: want tcp://host:port or ipc://path", addr)
	}
	switch scheme {
	case "tcp":
		if strings.HasPrefix(rest, "*:") {
			rest = rest[1:]
		}
		return net.Listen("tcp", rest)
	case "ipc":
		return net.Listen("unix", rest)
	}
	return nil, fmt.Errorf("endpoint %q: unsupported transport %q", addr, scheme)
}

// endpointAddr formats a listener's address as an endpoint.
func endpointAddr(ln net.Listener) string {
	if ln.Addr().Network() == "unix" {
		return "ipc://" + ln.Addr().String()
	}
	return "tcp://" + ln.Addr().String()
}

// conns tracks the connections of every endpoint, for the connection
// limit and for draining.
type conns struct {
	mu       sync.Mutex
	live     map[*zconn]bool // value: past the handshake
	resp     map[*rconn]bool
	draining bool
	wg       sync.WaitGroup
}

// acceptLoop accepts connections on ln until it closes and hands each to
// serve. The RESP endpoint and every ZeroMQ endpoint run one.
func (s *Server) acceptLoop(ln net.Listener, name string, serve func(net.Conn)) {
	defer s.loops.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept", "endpoint", name, "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: back off
			continue
		}
		serve(nc)
	}
}

// accept runs ep's accept loop until its listener closes.
func (s *Server) accept(ep *endpoint) {
	s.acceptLoop(ep.ln, ep.name, func(nc net.Conn) {
		c := &zconn{ep: ep, nc: nc}
		if !s.admit(ep.name, nc, func() { s.conns.live[c] = false }) {
			nc.Close()
			return
		}
		go s.run(c)
	})
}

// admit registers a new connection with register (called under the
// connections' lock) unless the server is draining or at its connection
// limit, which counts every endpoint's connections together.
func (s *Server) admit(endpoint string, nc net.Conn, register func()) bool {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	if s.conns.draining {
		return false
	}
	if len(s.conns.live)+len(s.conns.resp) >= s.cfg.MaxConns {
		s.metrics.rejected.WithLabelValues(endpoint).Inc()
		s.log.Warn("connection limit reached; refusing a connection", "endpoint", endpoint, "remote", nc.RemoteAddr(), "limit", s.cfg.MaxConns)
		return false
	}
	register()
	s.conns.wg.Add(1)
	return true
}

// release undoes admit for a connection that has ended: it unregisters
// it with unregister (called under the connections' lock), closes it and
// marks it done for the drain.
func (s *Server) release(nc net.Conn, unregister func()) {
	s.conns.mu.Lock()
	unregister()
	s.conns.mu.Unlock()
	nc.Close()
	s.conns.wg.Done()
}

// run performs the handshake and serves c until it ends.
func (s *Server) run(c *zconn) {
	defer s.release(c.nc, func() { delete(s.conns.live, c) })
	if err := s.handshake(c); err != nil {
		s.log.Debug("zmq: handshake failed", "endpoint", c.ep.name, "remote", c.nc.RemoteAddr(), "err", err)
		return
	}
	s.metrics.conns.WithLabelValues(c.ep.name).Inc()
	defer s.metrics.conns.WithLabelValues(c.ep.name).Dec()
	c.ep.serve(c)
}

// handshake runs the ZMTP greeting and NULL handshake within the
// handshake timeout and marks c as serving, or fails if the server began
// to drain meanwhile.
func (s *Server) handshake(c *zconn) error {
	if err := c.nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout)); err != nil {
		return err
	}
	c.w = newWire(c.nc, s.cfg.MaxMessage, s.cfg.WriteTimeout)
	zc, err := openZMTP(c.w, c.ep.typ)
	if err == nil {
		err = c.w.Flush()
	}
	if err != nil {
		return err
	}
	c.zc = zc
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	if s.conns.draining {
		return errors.New("server is draining")
	}
	s.conns.live[c] = true
	// Drain sets a read deadline on live connections under this lock; a
	// connection cleared here was not live yet when it did.
	return c.nc.SetDeadline(time.Time{})
}

// openZMTP runs zmq4's greeting and NULL handshake over w. zmq4 panics
// on some malformed handshakes (a READY property whose length runs past
// the command: an out-of-range slice in Metadata.UnmarshalZMTP); one
// connection's bad bytes must not bring down the server, so such a panic
// is an error of that connection.
func openZMTP(w *wire, typ zmq4.SocketType) (zc *zmq4.Conn, err error) {
	defer func() {
		if r := recover(); r != nil {
			zc, err = nil, fmt.Errorf("zmq4 failed on the handshake: %v", r)
		}
	}()
	return zmq4.Open(w, null.Security(), typ, nil, true, nil)
}

// send sends frames as one message and flushes it.
func (c *zconn) send(frames ...[]byte) error {
	if err := c.zc.SendMsg(zmq4.NewMsgFrom(frames...)); err != nil {
		return err
	}
	return c.w.Flush()
}

// stopReading makes every blocked and future read of live connections
// fail, so their goroutines finish what they are doing and end.
func (s *Server) stopReading() {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	s.conns.draining = true
	now := time.Now()
	s.eachConnLocked(func(nc net.Conn) { nc.SetReadDeadline(now) })
}

// closeConns closes every connection at once.
func (s *Server) closeConns() {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	s.eachConnLocked(func(nc net.Conn) { nc.Close() })
}

// eachConnLocked calls f with every admitted connection of every
// endpoint, ZeroMQ and RESP; the connections' lock is held.
func (s *Server) eachConnLocked(f func(net.Conn)) {
	for c := range s.conns.live {
		f(c.nc)
	}
	for c := range s.conns.resp {
		f(c.nc)
	}
}
