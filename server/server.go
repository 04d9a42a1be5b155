package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Config configures a Server. DefaultConfig gives the Python CIDStore's
// ports, every one bound to the loopback interface.
type Config struct {
	// ZeroMQ endpoints ("tcp://host:port" or "ipc://path"); "" turns one
	// off. ZMQ is the REQ/REP endpoint (every command, one reply each),
	// Push takes fire-and-forget mutations from PUSH clients, Router
	// answers DEALER clients like ZMQ does REQ clients, and Pub publishes
	// heartbeats and mutation notifications.
	ZMQ, Push, Router, Pub string
	// HTTP is the control plane's address ("host:port"); "" turns it off.
	HTTP string
	// RESP is the Redis protocol endpoint's address ("127.0.0.1:6379";
	// a missing host means loopback, "*" every interface); "" (the
	// default) turns it off.
	RESP string
	// AllowFlushAll lets an authenticated RESP client remove everything
	// with FLUSHALL. Off by default.
	AllowFlushAll bool
	// Token is the bearer token that PUT /config and POST /checkpoint
	// require. Empty refuses them.
	Token string
	// MaxMessage bounds one request, in bytes: a ZeroMQ message, all
	// frames together, or a RESP request. A request over it gets an error
	// reply (413) and the connection stays usable. Default 64 MiB.
	MaxMessage int
	// MaxConns bounds the open connections of all endpoints together,
	// ZeroMQ and RESP; more are closed at once (a RESP client is told
	// why). Default 1024.
	MaxConns int
	// Limits bound batches and query results.
	Limits Limits
	// HandshakeTimeout bounds a ZeroMQ handshake. Default 5s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds sending one reply to a client that does not
	// read; the connection is closed after it. Default 30s.
	WriteTimeout time.Duration
	// Heartbeat is the period of PUB heartbeats. Default 1s.
	Heartbeat time.Duration
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
}

// DefaultConfig returns the Python service's endpoints on 127.0.0.1 and
// the default limits, the values a zero field of Config stands for.
func DefaultConfig() Config {
	return Config{
		ZMQ:              "tcp://127.0.0.1:5555",
		Push:             "tcp://127.0.0.1:5557",
		Router:           "tcp://127.0.0.1:5558",
		Pub:              "tcp://127.0.0.1:5559",
		HTTP:             "127.0.0.1:8000",
		MaxMessage:       64 << 20,
		MaxConns:         1024,
		Limits:           Limits{}.withDefaults(),
		HandshakeTimeout: 5 * time.Second,
		WriteTimeout:     30 * time.Second,
		Heartbeat:        time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxMessage <= 0 {
		c.MaxMessage = d.MaxMessage
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// Server serves a Backend over ZeroMQ (the Python CIDStore's msgpack
// protocol) and HTTP (the control plane). Start it in two steps, so that
// health checks answer while the store recovers: ListenHTTP, then Start
// with the opened store. Shutdown drains it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	hub     *hub
	started time.Time

	backend atomic.Pointer[Backend] // nil until Start
	exec    *Executor
	ready   atomic.Bool

	endpoints []*endpoint
	respLn    net.Listener
	conns     conns
	loops     sync.WaitGroup // accept loops and the heartbeat
	stopBeat  chan struct{}

	cursors  scanCursors     // RESP SCAN positions
	saving   atomic.Bool     // a BGSAVE is running
	saveErr  atomic.Bool     // the last BGSAVE failed
	bg       sync.WaitGroup  // BGSAVE
	bgCtx    context.Context // cancelled by Shutdown
	bgCancel context.CancelFunc

	httpSrv *http.Server
	httpLn  net.Listener
	httpErr chan error
	routes  []route

	shutdown sync.Once
}

// New returns a Server for cfg; nothing is bound yet.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		metrics:  newMetrics(),
		started:  time.Now(),
		stopBeat: make(chan struct{}),
		httpErr:  make(chan error, 1),
	}
	s.conns.live = map[*zconn]bool{}
	s.conns.resp = map[*rconn]bool{}
	s.hub = newHub(s.metrics.dropped.Inc)
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	return s
}

// Addr returns the bound address of an endpoint ("zmq", "push",
// "router", "pub", "resp" or "http"), or "" when it is not bound: with
// port 0 in the configuration, this is where the port chosen shows.
func (s *Server) Addr(name string) string {
	var ln net.Listener
	switch name {
	case "http":
		ln = s.httpLn
	case "resp":
		ln = s.respLn
	default:
		for _, ep := range s.endpoints {
			if ep.name == name {
				return endpointAddr(ep.ln)
			}
		}
	}
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// ListenHTTP binds and serves the control plane. Until Start, /health
// answers and /ready says 503.
func (s *Server) ListenHTTP() error {
	if s.cfg.HTTP == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	s.httpLn = ln
	s.httpSrv = &http.Server{
		Handler:           s.httpHandler(isLoopback(ln.Addr())),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      5 * time.Minute, // a CPU profile takes 30s; a checkpoint longer
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go func() {
		err := s.httpSrv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.httpErr <- err
	}()
	return nil
}

// isLoopback reports whether a listener's address is on a loopback
// interface.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Start binds the ZeroMQ endpoints, serves b on them and marks the server
// ready. On error nothing stays bound.
func (s *Server) Start(b Backend) error {
	s.exec = NewExecutor(b, s.cfg.Limits)
	if s.cfg.Pub != "" {
		s.exec.OnMutation = s.hub.mutation
	}
	s.exec.Counters = s.counters
	s.backend.Store(&b)
	specs := []struct {
		name, addr string
		typ        zmq4.SocketType
		serve      func(*zconn)
	}{
		{"zmq", s.cfg.ZMQ, zmq4.Router, s.serveReply},
		{"push", s.cfg.Push, zmq4.Pull, s.servePull},
		{"router", s.cfg.Router, zmq4.Router, s.serveReply},
		{"pub", s.cfg.Pub, zmq4.Pub, s.servePub},
	}
	for _, sp := range specs {
		if sp.addr == "" {
			continue
		}
		ln, err := listen(sp.addr)
		if err != nil {
			for _, ep := range s.endpoints {
				ep.ln.Close()
			}
			s.endpoints = nil
			return fmt.Errorf("%s endpoint: %w", sp.name, err)
		}
		s.endpoints = append(s.endpoints, &endpoint{name: sp.name, typ: sp.typ, ln: ln, serve: sp.serve})
	}
	if s.cfg.RESP != "" {
		ln, err := listenRESP(s.cfg.RESP)
		if err != nil {
			for _, ep := range s.endpoints {
				ep.ln.Close()
			}
			s.endpoints = nil
			return fmt.Errorf("resp endpoint: %w", err)
		}
		s.respLn = ln
		s.loops.Add(1)
		go s.acceptRESP(ln)
	}
	for _, ep := range s.endpoints {
		s.loops.Add(1)
		go s.accept(ep)
	}
	if s.cfg.Pub != "" {
		s.loops.Add(1)
		go s.beat(s.cfg.Heartbeat, s.stopBeat)
	}
	s.ready.Store(true)
	return nil
}

// currentBackend returns the backend, or nil before Start.
func (s *Server) currentBackend() Backend {
	if p := s.backend.Load(); p != nil {
		return *p
	}
	return nil
}

// counters adds the server's counters to the metrics command.
func (s *Server) counters(add func(string, int64)) {
	s.conns.mu.Lock()
	live := len(s.conns.live)
	s.conns.mu.Unlock()
	add("requests", s.metrics.total.Load())
	add("request_errors", s.metrics.failed.Load())
	add("connections", int64(live))
	add("pub_subscribers", int64(s.hub.n.Load()))
	add("uptime_seconds", int64(time.Since(s.started).Seconds()))
}

// Shutdown drains the server: it stops accepting connections and reading
// requests, lets the requests in progress finish and send their replies,
// then closes every connection and the control plane. If ctx ends first,
// connections are closed at once and ctx's error returned; a request
// still in the store then completes or fails there, unacknowledged.
// The caller closes the Backend afterwards.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutdown.Do(func() {
		s.ready.Store(false)
		for _, ep := range s.endpoints {
			ep.ln.Close()
		}
		if s.respLn != nil {
			s.respLn.Close()
		}
		s.stopReading()
		done := make(chan struct{})
		go func() {
			s.conns.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
			s.closeConns()
		}
		close(s.stopBeat)
		s.loops.Wait()
		s.bgCancel()
		s.bg.Wait()
		if s.httpSrv != nil {
			if herr := s.httpSrv.Shutdown(ctx); herr != nil {
				s.httpSrv.Close()
				err = errors.Join(err, herr)
			}
			err = errors.Join(err, <-s.httpErr)
		}
	})
	return err
}
