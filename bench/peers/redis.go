package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cidstore/cidstore/bench"
	"github.com/cidstore/cidstore/cid"
	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server child process on a free loopback port
// with its own temporary directory. Persistence is off except for an
// explicit SAVE (used by the restart-load measurement).
type redisServer struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
	exited   chan error
	loadLine string // "DB loaded from disk: ..." from the last start, if any
}

// startRedis starts redis-server bin with its data in dir, on a free
// loopback port.
func startRedis(ctx context.Context, bin, dir string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &redisServer{bin: bin, dir: dir, port: port}
	_, err = s.start(ctx)
	return s, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start launches the server and returns once it logs that it accepts
// connections (after loading dump.rdb, if there is one) and answers PING
// with loading:0. It returns how long that took.
func (s *redisServer) start(ctx context.Context) (time.Duration, error) {
	s.cmd = exec.CommandContext(ctx, s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--dir", s.dir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", "", "--loglevel", "notice")
	s.cmd.Stderr = os.Stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return 0, err
	}
	s.exited = make(chan error, 1)
	ready := make(chan string, 1)
	go s.scanLog(out, ready)
	go func() { s.exited <- s.cmd.Wait() }()
	select {
	case s.loadLine = <-ready:
	case err := <-s.exited:
		s.exited <- err
		return 0, fmt.Errorf("redis-server exited before it was ready: %v", err)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// Ready means loaded; confirm over the wire.
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return 0, err
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return 0, err
	}
	if infoField(info, "loading") != "0" {
		return 0, errors.New("redis-server is still loading after it said it was ready")
	}
	return time.Since(start), nil
}

// scanLog forwards the server's log to nowhere, sending on ready (once)
// the "DB loaded" line, or "" when the server is ready without one.
func (s *redisServer) scanLog(r io.Reader, ready chan<- string) {
	sc := bufio.NewScanner(r)
	var loaded string
	sent := false
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "DB loaded from disk") {
			loaded = line[strings.Index(line, "DB loaded"):]
		}
		if !sent && strings.Contains(line, "Ready to accept connections") {
			ready <- loaded
			sent = true
		}
	}
	io.Copy(io.Discard, r)
}

// stop ends the server without saving and waits for it.
func (s *redisServer) stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	err := <-s.exited
	s.cmd = nil
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // terminated by our signal
	}
	return err
}

// restart saves the data set, stops the server and starts it again on
// the same port and directory, returning the time from process start
// until it answers with the data loaded.
func (s *redisServer) restart(ctx context.Context) (time.Duration, error) {
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	if err := errors.Join(c.Save(ctx).Err(), c.Close()); err != nil {
		return 0, err
	}
	if err := s.stop(); err != nil {
		return 0, err
	}
	return s.start(ctx)
}

func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// redisTarget models the map as one Redis set per key: SADD, SREM,
// SMEMBERS; binary CIDs are the key and member strings.
type redisTarget struct {
	c *redis.Client
}

// redisOpener connects to s and empties it.
func redisOpener(s *redisServer, poolSize int) bench.Opener {
	return func() (bench.Target, error) {
		c := redis.NewClient(&redis.Options{Addr: s.addr(), PoolSize: poolSize, MinIdleConns: poolSize})
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			return nil, errors.Join(err, c.Close())
		}
		return &redisTarget{c: c}, nil
	}
}

func (t *redisTarget) Name() string { return "Redis" }

func (t *redisTarget) AppendValues(dst []cid.CID, k cid.CID) ([]cid.CID, error) {
	members, err := t.c.SMembers(context.Background(), string(k[:])).Result()
	for _, m := range members {
		if len(m) != cid.Size {
			return dst, fmt.Errorf("redis member of %d bytes", len(m))
		}
		dst = append(dst, cid.CID([]byte(m)))
	}
	return dst, err
}

func (t *redisTarget) Insert(k, v cid.CID) error {
	return t.c.SAdd(context.Background(), string(k[:]), string(v[:])).Err()
}

func (t *redisTarget) InsertBatch(pairs []bench.Pair) error {
	_, err := t.c.Pipelined(context.Background(), func(p redis.Pipeliner) error {
		for _, pr := range pairs {
			p.SAdd(context.Background(), string(pr.Key[:]), string(pr.Value[:]))
		}
		return nil
	})
	return err
}

func (t *redisTarget) Delete(k, v cid.CID) error {
	return t.c.SRem(context.Background(), string(k[:]), string(v[:])).Err()
}

// Memory reports INFO memory's used_memory and used_memory_rss.
func (t *redisTarget) Memory() (used, rss int64, err error) {
	info, err := t.c.Info(context.Background(), "memory").Result()
	if err != nil {
		return 0, 0, err
	}
	used, err1 := strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
	rss, err2 := strconv.ParseInt(infoField(info, "used_memory_rss"), 10, 64)
	return used, rss, errors.Join(err1, err2)
}

func (t *redisTarget) Close() error { return t.c.Close() }

// redisBinary finds redis-server: the flag's value, or on PATH.
func redisBinary(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return exec.LookPath("redis-server")
}
