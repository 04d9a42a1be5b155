package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cidstore/cidstore/server"
	"github.com/cidstore/cidstore/store"
	"github.com/cidstore/cidstore/vfs"
)

// serveEnv maps flags to the environment variables that set their
// defaults: the Python CIDStore's names where it had one.
var serveEnv = map[string]string{
	"zmq":    "CIDSTORE_ZMQ_ENDPOINT",
	"push":   "CIDSTORE_PUSH_PULL_ADDR",
	"router": "CIDSTORE_ROUTER_DEALER_ADDR",
	"pub":    "CIDSTORE_PUB_SUB_ADDR",
	"http":   "CIDSTORE_HTTP_ADDR",
	"resp":   "CIDSTORE_RESP_ADDR",
	"sync":   "CIDSTORE_SYNC",
	"shards": "CIDSTORE_SHARDS",
}

// runServe serves a store over ZeroMQ and HTTP until SIGINT or SIGTERM
// (or ctx), then drains and closes it; a second signal exits at once.
func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	def := server.DefaultConfig()
	fs := newFlags("serve", stdout)
	zmqAddr := fs.String("zmq", def.ZMQ, "REQ/REP endpoint, every command (\"\" turns it off)")
	push := fs.String("push", def.Push, "PUSH/PULL endpoint, fire-and-forget mutations")
	router := fs.String("router", def.Router, "ROUTER/DEALER endpoint, every command for DEALER clients")
	pub := fs.String("pub", def.Pub, "PUB endpoint: heartbeats and mutation notifications")
	httpAddr := fs.String("http", def.HTTP, "HTTP control plane address")
	respAddr := fs.String("resp", "", "Redis protocol (RESP) address such as 127.0.0.1:6379 (default off; no host: loopback, *: every interface)")
	allowFlushAll := fs.Bool("allow-flushall", false, "let RESP clients authenticated with the token remove everything with FLUSHALL")
	memory := fs.Bool("memory", false, "serve an in-memory store (no DIR)")
	syncMode := fs.String("sync", "always", "durability: always (fsync before every reply), interval or never")
	syncEvery := fs.Duration("sync-interval", store.DefaultConfig().SyncInterval, "fsync period under -sync interval")
	shards := fs.Int("shards", 0, "shard count (0: the store's default)")
	tokenFile := fs.String("token-file", "", "file holding the bearer token for PUT /config and POST /checkpoint (or set CIDSTORE_TOKEN)")
	maxMessage := fs.Int("max-message", def.MaxMessage, "largest request (ZeroMQ message or RESP request) in bytes; larger ones get an error reply")
	maxConns := fs.Int("max-conns", def.MaxConns, "most open connections, ZeroMQ and RESP together")
	queryLimit := fs.Int("query-limit", def.Limits.QueryLimit, "results of a query that names no limit")
	maxQueryLimit := fs.Int("max-query-limit", def.Limits.MaxQueryLimit, "most results one query may ask for")
	drain := fs.Duration("drain-timeout", 10*time.Second, "how long a shutdown waits for requests in progress")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	readyFile := fs.String("ready-file", "", "once serving, write the bound addresses to this file as JSON")
	rf := addRaftFlags(fs)
	for name, env := range serveEnv {
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%w: %s=%q: %v", errUsage, env, v, err)
			}
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// An empty DIR, like -memory, serves an in-memory store.
	dir := ""
	switch {
	case *memory && fs.NArg() == 0:
	case fs.NArg() == 1 && (fs.Arg(0) == "" || !*memory):
		dir = fs.Arg(0)
		*memory = dir == ""
	default:
		return fmt.Errorf("%w: serve [flags] DIR, or serve -memory [flags]", errUsage)
	}
	readMode, err := rf.check(dir)
	if err != nil {
		return err
	}
	log, err := newLogger(stdout, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	scfg := store.DefaultConfig()
	scfg.SyncInterval = *syncEvery
	if scfg.Sync, err = parseSync(*syncMode); err != nil {
		return err
	}
	opts := store.Options{Shards: *shards, InMemory: *memory, Config: &scfg, Logger: log}
	cfg := server.Config{
		ZMQ: *zmqAddr, Push: *push, Router: *router, Pub: *pub, HTTP: *httpAddr,
		RESP: *respAddr, AllowFlushAll: *allowFlushAll,
		MaxMessage: *maxMessage, MaxConns: *maxConns,
		Limits: server.Limits{QueryLimit: *queryLimit, MaxQueryLimit: *maxQueryLimit},
		Logger: log,
	}
	if cfg.Token, err = readToken(*tokenFile); err != nil {
		return err
	}
	if cfg.Token == "" {
		log.Info("no token configured: PUT /config and POST /checkpoint are refused")
	}

	srv := server.New(cfg)
	var rs *raftServe // a replica, with -raft-id
	if *rf.id != "" {
		if rs, err = newRaftServe(rf, readMode, dir, opts, srv, cfg.Token, log); err != nil {
			return err
		}
	}
	if err := srv.ListenHTTP(); err != nil {
		return errors.Join(err, rs.closeIfAny())
	}
	if a := srv.Addr("http"); a != "" {
		log.Info("listening", "endpoint", "http", "addr", a)
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), *drain)
		defer cancel()
		return srv.Shutdown(sctx)
	}
	var (
		st      *store.Store
		backend server.Backend
	)
	if rs != nil {
		st, backend = rs.st, rs.backend
	} else {
		start := time.Now()
		if st, err = store.Open(dir, opts); err != nil {
			return errors.Join(err, shutdown())
		}
		rec := st.Stats().Recovery
		log.Info("store open", "dir", dir, "persistent", st.Persistent(), "shards", st.Shards(), "keys", st.Len(),
			"recovered_records", rec.Records, "took", time.Since(start).Round(time.Millisecond))
		backend = st
	}
	closeStore := func() error {
		if rs != nil {
			return rs.close()
		}
		return st.Close()
	}
	if err := srv.Start(backend); err != nil {
		return errors.Join(err, shutdown(), closeStore())
	}
	addrs := map[string]string{}
	for _, name := range []string{"zmq", "push", "router", "pub", "resp", "http"} {
		if a := srv.Addr(name); a != "" {
			addrs[name] = a
			if name != "http" {
				log.Info("listening", "endpoint", name, "addr", a)
			}
		}
	}
	if rs != nil {
		if err := rs.start(ctx, addrs); err != nil {
			return errors.Join(err, shutdown(), closeStore())
		}
		addrs["raft"] = rs.node.Addr()
	}
	if *readyFile != "" {
		if err := writeReadyFile(*readyFile, addrs); err != nil {
			return errors.Join(err, shutdown(), closeStore())
		}
	}
	log.Info("ready")

	<-ctx.Done()
	// A second signal exits at once. Acknowledged writes are durable as
	// -sync says whenever they were acknowledged, so exiting loses none
	// of them; the requests in progress stay unacknowledged.
	second := make(chan os.Signal, 1)
	signal.Notify(second, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(second)
	drained := make(chan struct{})
	defer close(drained)
	go func() {
		select {
		case sig := <-second:
			log.Warn("second signal: exiting without draining", "signal", sig.String())
			os.Exit(1)
		case <-drained:
		}
	}()
	if rs != nil {
		rs.handOff()
	}
	log.Info("draining", "timeout", *drain)
	serr := shutdown()
	if serr != nil {
		log.Warn("drain incomplete", "err", serr)
	}
	if err := closeStore(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	log.Info("stopped")
	return nil
}

func parseSync(s string) (store.SyncMode, error) {
	switch s {
	case "always":
		return store.SyncAlways, nil
	case "interval":
		return store.SyncInterval, nil
	case "never":
		return store.SyncNever, nil
	}
	return 0, fmt.Errorf("%w: -sync %q: want always, interval or never", errUsage, s)
}

// readToken returns the bearer token: the first line of file, else
// $CIDSTORE_TOKEN.
func readToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv("CIDSTORE_TOKEN")), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("-token-file: %w", err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", fmt.Errorf("-token-file %s: empty", file)
	}
	return tok, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: -log-level %q: %v", errUsage, level, err)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("%w: -log-format %q: want text or json", errUsage, format)
}

// writeReadyFile writes addrs as JSON to path, whole or not at all
// (vfs.WriteFileAtomic, under a unique hidden temporary name).
func writeReadyFile(path string, addrs map[string]string) error {
	b, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*")
	return vfs.WriteFileAtomic(vfs.Default, path, tmp, func(f vfs.File) error {
		_, err := f.Write(b)
		return err
	})
}
