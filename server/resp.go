package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/store"
	"github.com/prometheus/client_golang/prometheus"
)

// The RESP endpoint speaks the Redis protocol, so that redis-cli,
// redis-benchmark and every Redis client library work with the store:
// sets of CIDs under CID keys (SADD, SMEMBERS, ...), triples as
// module-style commands (TADD, TQUERY, ...), MULTI/EXEC transactions as
// atomic batches. respcmd.go lists the commands; they decode into the
// command layer's Commands, so their meaning and errors are those of
// every other protocol.
//
// Each connection is served by one goroutine that reads every request the
// client has sent (a pipeline), applies them in order and answers them all
// with one write. Consecutive SADD, SREM and DEL requests of a pipeline
// are applied as one atomic batch, one WAL record and one group commit;
// their replies are sent when that batch is durable as the store's sync
// policy says, so no reply acknowledges a write before it is durable.

// listenRESP binds the RESP address. A host left out (":6379", "6379")
// means the loopback interface; "*:6379" or "0.0.0.0:6379" binds every
// interface, which must be asked for explicitly.
func listenRESP(addr string) (net.Listener, error) {
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("resp address %q: %w", addr, err)
	}
	switch host {
	case "":
		host = "127.0.0.1"
	case "*":
		host = ""
	}
	return net.Listen("tcp", net.JoinHostPort(host, port))
}

// rconn is one RESP connection.
type rconn struct {
	s  *Server
	nc net.Conn
	rd *respReader
	w  respWriter
	id int64

	name, libName, libVer string
	authed                bool
	txn                   *respTxn // within MULTI, else nil
	quit                  bool

	cmd   Command // for a request's command
	res   Result
	group respGroup

	// Per batch of requests, added to the server's metrics after it.
	done   [numOps]int64
	failed int64

	// The latency histogram and success counter of each command, looked
	// up on first use: WithLabelValues hashes its labels and takes a lock
	// on every call.
	latency [numOps]prometheus.Observer
	ok      [numOps]prometheus.Counter
}

var respConnID atomic.Int64

// acceptRESP runs the RESP accept loop until its listener closes.
func (s *Server) acceptRESP(ln net.Listener) {
	s.acceptLoop(ln, "resp", func(nc net.Conn) {
		c := &rconn{s: s, nc: nc, id: respConnID.Add(1)}
		if !s.admit("resp", nc, func() { s.conns.resp[c] = true }) {
			// Like Redis at maxclients: an error reply, then close.
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write([]byte("-ERR max number of clients reached\r\n"))
			nc.Close()
			return
		}
		go s.serveRESP(c)
	})
}

// serveRESP answers one client's requests until it leaves, sends
// something that is not RESP, or the server drains.
func (s *Server) serveRESP(c *rconn) {
	defer s.release(c.nc, func() { delete(s.conns.resp, c) })
	s.metrics.conns.WithLabelValues("resp").Inc()
	defer s.metrics.conns.WithLabelValues("resp").Dec()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.rd = newRESPReader(c.nc, s.cfg.MaxMessage, maxRESPArgs(s.exec.lim))
	for {
		reqs, err := c.rd.next()
		c.run(reqs)
		if errors.Is(err, errProtocol) {
			c.w.errorString("ERR " + err.Error())
			c.quit = true
		}
		c.account()
		if len(c.w.b) > 0 {
			if ferr := c.flush(); ferr != nil {
				return
			}
		}
		if err != nil || c.quit {
			return
		}
	}
}

// maxRESPArgs bounds the arguments of one request: a TADD of the largest
// triple batch, or an SADD of the largest pair batch.
func maxRESPArgs(l Limits) int {
	return 2 + max(3*l.batchLimit(true), l.batchLimit(false))
}

// flush writes the replies within the write timeout.
func (c *rconn) flush() error {
	c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	_, err := c.nc.Write(c.w.b)
	if cap(c.w.b) > 1<<20 {
		c.w.b = nil // let a large reply's buffer go
	} else {
		c.w.b = c.w.b[:0]
	}
	return err
}

// account adds the batch's counts to the server's metrics.
func (c *rconn) account() {
	m := c.s.metrics
	var total int64
	for op, n := range c.done {
		if n > 0 {
			if c.ok[op] == nil {
				c.ok[op] = m.requests.WithLabelValues("resp", Op(op).String(), "200")
			}
			c.ok[op].Add(float64(n))
			total += n
			c.done[op] = 0
		}
	}
	m.total.Add(total + c.failed)
	m.failed.Add(c.failed)
	c.failed = 0
}

// exec runs c.cmd, counting it.
func (c *rconn) exec() error {
	start := time.Now()
	err := c.s.exec.Execute(&c.cmd, &c.res)
	if err != nil {
		// observe counts it in the totals; c.failed is for the requests
		// that never reach the executor.
		c.s.metrics.observe("resp", c.cmd.Op, err, time.Since(start))
		if asError(err).Code >= 500 {
			c.s.log.Error("request failed", "endpoint", "resp", "command", c.cmd.Op.String(), "err", err)
		}
		return err
	}
	lat := c.latency[c.cmd.Op]
	if lat == nil {
		lat = c.s.metrics.latency.WithLabelValues("resp", c.cmd.Op.String())
		c.latency[c.cmd.Op] = lat
	}
	lat.Observe(time.Since(start).Seconds())
	c.done[c.cmd.Op]++
	return nil
}

// bgSave runs a checkpoint in the background (BGSAVE); Shutdown cancels
// it and waits for it.
func (s *Server) bgSave(b Backend) bool {
	if !s.saving.CompareAndSwap(false, true) {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer s.saving.Store(false)
		err := b.Checkpoint(s.bgCtx)
		if errors.Is(err, context.Canceled) {
			return // the server is shutting down
		}
		// INFO's rdb_last_bgsave_status tells the client that asked.
		s.saveErr.Store(err != nil)
		if err != nil {
			s.log.Error("resp: BGSAVE failed", "err", err)
		}
	}()
	return true
}

// respSync names the store's sync policy as Redis's appendfsync does,
// for INFO and CONFIG GET.
func respSync(c store.Config) string {
	switch c.Sync {
	case store.SyncAlways:
		return "always"
	case store.SyncInterval:
		return "everysec"
	}
	return "no"
}
