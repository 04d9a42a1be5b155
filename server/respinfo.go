package server

import (
	"crypto/subtle"
	"fmt"
	"net"
	"os"
	"path"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// The connection and server commands of the RESP endpoint: HELLO, AUTH,
// CLIENT, COMMAND, CONFIG GET, INFO, LASTSAVE, SAVE, BGSAVE, FLUSHALL.

// respVersion is the Redis version the endpoint reports (HELLO, INFO's
// redis_version): the protocol and command forms it follows.
const respVersion = "7.0.0"

// cidstoreVersion is the module's version, as the build recorded it.
func cidstoreVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// cmdHello answers "HELLO [protover [AUTH user pass] [SETNAME name]]".
func cmdHello(c *rconn, args [][]byte) {
	resp3 := c.w.resp3
	if len(args) > 1 {
		switch string(args[1]) {
		case "2":
			resp3 = false
		case "3":
			resp3 = true
		default:
			c.w.errorString("NOPROTO sorry, this protocol version is not supported")
			return
		}
	}
	for i := 2; i < len(args); i++ {
		var nb [8]byte
		switch opt := string(lowerName(nb[:], args[i])); {
		case opt == "auth" && i+2 < len(args):
			if err := c.auth(args[i+2]); err != nil {
				c.w.err(err)
				return
			}
			i += 2
		case opt == "setname" && i+1 < len(args):
			c.name = string(args[i+1])
			i++
		default:
			c.w.err(errorf(CodeBadRequest, "syntax error in HELLO option '%s'", clipArg(args[i])))
			return
		}
	}
	c.w.resp3 = resp3
	proto := 2
	if resp3 {
		proto = 3
	}
	c.w.mapHeader(7)
	c.w.bulkString("server")
	c.w.bulkString("cidstore")
	c.w.bulkString("version")
	c.w.bulkString(respVersion)
	c.w.bulkString("proto")
	c.w.int(proto)
	c.w.bulkString("id")
	c.w.int64(c.id)
	c.w.bulkString("mode")
	c.w.bulkString("standalone")
	c.w.bulkString("role")
	c.w.bulkString("master")
	c.w.bulkString("modules")
	c.w.array(0)
}

// auth checks a password against the server's token.
func (c *rconn) auth(pass []byte) error {
	tok := c.s.cfg.Token
	if tok == "" {
		return errorf(CodeBadRequest, "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	}
	if subtle.ConstantTimeCompare(pass, []byte(tok)) != 1 {
		c.authed = false
		return &Error{Code: CodeUnauthorized, Msg: "invalid password"}
	}
	c.authed = true
	return nil
}

// cmdAuth answers "AUTH [user] password".
func cmdAuth(c *rconn, args [][]byte) {
	if len(args) > 3 {
		c.w.err(errorf(CodeBadRequest, "syntax error"))
		return
	}
	if err := c.auth(args[len(args)-1]); err != nil {
		if asError(err).Code == CodeUnauthorized {
			c.w.errorString("WRONGPASS invalid username-password pair or user is disabled.")
			return
		}
		c.w.err(err)
		return
	}
	c.w.ok()
}

// admin checks that the connection may run SAVE, BGSAVE or FLUSHALL: the
// server has a token and the client gave it, as the control plane's POST
// /checkpoint requires.
func (c *rconn) admin(name string) error {
	switch {
	case c.s.cfg.Token == "":
		return &Error{Code: CodeForbidden, Msg: name + " needs the server's token, and none is configured"}
	case !c.authed:
		return &Error{Code: CodeUnauthorized, Msg: "Authentication required: " + name + " needs AUTH with the server's token"}
	}
	return nil
}

// cmdClient answers CLIENT SETNAME, GETNAME, SETINFO, ID, INFO and LIST.
func cmdClient(c *rconn, args [][]byte) {
	var nb [16]byte
	sub := string(lowerName(nb[:], args[1]))
	switch {
	case sub == "setname" && len(args) == 3:
		if strings.ContainsAny(string(args[2]), " \n\r") {
			c.w.err(errorf(CodeBadRequest, "Client names cannot contain spaces, newlines or special characters."))
			return
		}
		c.name = string(args[2])
		c.w.ok()
	case sub == "getname" && len(args) == 2:
		if c.name == "" {
			c.w.null()
			return
		}
		c.w.bulkString(c.name)
	case sub == "setinfo" && len(args) == 4:
		switch string(lowerName(nb[:], args[2])) {
		case "lib-name":
			c.libName = string(args[3])
		case "lib-ver":
			c.libVer = string(args[3])
		default:
			c.w.err(errorf(CodeBadRequest, "Unrecognized option '%s'", clipArg(args[2])))
			return
		}
		c.w.ok()
	case sub == "id" && len(args) == 2:
		c.w.int64(c.id)
	case (sub == "info" || sub == "list") && len(args) == 2:
		c.w.bulkString(c.clientLine() + "\n")
	default:
		c.w.err(errorf(CodeBadRequest, "unknown subcommand or wrong number of arguments for 'client|%s' command", clipArg(args[1])))
	}
}

func (c *rconn) clientLine() string {
	return fmt.Sprintf("id=%d addr=%s laddr=%s name=%s db=0 multi=%d resp=%d lib-name=%s lib-ver=%s",
		c.id, c.nc.RemoteAddr(), c.nc.LocalAddr(), c.name, map[bool]int{false: -1, true: 0}[c.txn != nil],
		map[bool]int{false: 2, true: 3}[c.w.resp3], c.libName, c.libVer)
}

// cmdCommand answers COMMAND, COMMAND COUNT, COMMAND INFO name... and
// COMMAND DOCS (no documentation: redis-cli then uses its own hints).
func cmdCommand(c *rconn, args [][]byte) {
	names := make([]string, 0, len(respCommands))
	for n := range respCommands {
		names = append(names, n)
	}
	slices.Sort(names)
	sub := ""
	if len(args) > 1 {
		var nb [8]byte
		sub = string(lowerName(nb[:], args[1]))
	}
	switch sub {
	case "":
		c.w.array(len(names))
		for _, n := range names {
			c.commandInfo(respCommands[n])
		}
	case "count":
		c.w.int(len(names))
	case "info":
		c.w.array(len(args) - 2)
		for _, a := range args[2:] {
			var nb [24]byte
			if rc := respCommands[string(lowerName(nb[:], a))]; rc != nil {
				c.commandInfo(rc)
			} else {
				c.w.null()
			}
		}
	case "docs":
		c.w.mapHeader(0)
	case "list":
		c.w.array(len(names))
		for _, n := range names {
			c.w.bulkString(n)
		}
	default:
		c.w.err(errorf(CodeBadRequest, "unknown subcommand '%s'", clipArg(args[1])))
	}
}

// commandInfo writes one COMMAND entry in Redis 7's ten-field form.
func (c *rconn) commandInfo(rc *respCmd) {
	first, last, step := 0, 0, 0
	if rc.keys != 0 {
		first, last, step = 1, rc.keys, 1
	}
	c.w.array(10)
	c.w.bulkString(rc.name)
	c.w.int(rc.arity)
	c.w.set(len(rc.flags))
	for _, f := range rc.flags {
		c.w.simple(f)
	}
	c.w.int(first)
	c.w.int(last)
	c.w.int(step)
	c.w.set(0) // ACL categories
	c.w.set(0) // tips
	c.w.array(0)
	c.w.array(0)
}

// configParams are CONFIG GET's parameters: Redis's names that clients
// and redis-benchmark ask for, then the store's live configuration with
// the control plane's names in Redis's dashed style.
func (c *rconn) configParams() [][2]string {
	b := c.s.currentBackend()
	sc := b.Config()
	persistent := b.Stats().Persistent
	yes := map[bool]string{false: "no", true: "yes"}
	ps := [][2]string{
		{"appendonly", yes[persistent]},
		{"appendfsync", respSync(sc)},
		{"save", ""},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(c.s.cfg.MaxConns)},
		{"proto-max-bulk-len", strconv.Itoa(c.s.cfg.MaxMessage)},
		{"allow-flushall", yes[c.s.cfg.AllowFlushAll]},
	}
	for name, v := range configJSON(sc) {
		ps = append(ps, [2]string{strings.ReplaceAll(name, "_", "-"), fmt.Sprint(v)})
	}
	slices.SortFunc(ps, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return ps
}

// cmdConfig answers "CONFIG GET pattern...". The configuration changes
// only through the control plane (PUT /config, with the token).
func cmdConfig(c *rconn, args [][]byte) {
	var nb [8]byte
	if sub := string(lowerName(nb[:], args[1])); sub != "get" {
		if sub == "set" || sub == "resetstat" || sub == "rewrite" {
			c.w.err(errorf(CodeBadRequest, "CONFIG %s is not supported: the configuration changes through the HTTP control plane (PUT /config)", strings.ToUpper(sub)))
			return
		}
		c.w.err(errorf(CodeBadRequest, "unknown subcommand '%s'", clipArg(args[1])))
		return
	}
	if len(args) < 3 {
		c.w.err(errorf(CodeBadRequest, "wrong number of arguments for 'config|get' command"))
		return
	}
	var out [][2]string
	for _, p := range c.configParams() {
		for _, pat := range args[2:] {
			if ok, _ := path.Match(strings.ToLower(string(pat)), p[0]); ok {
				out = append(out, p)
				break
			}
		}
	}
	c.w.mapHeader(len(out))
	for _, p := range out {
		c.w.bulkString(p[0])
		c.w.bulkString(p[1])
	}
}

// lastSave is the time of the newest checkpoint: the store's, or the
// server's start when it has written none since.
func (s *Server) lastSave(st store.Stats) time.Time {
	if t := st.Checkpoints.LastTime; !t.IsZero() {
		return t
	}
	return s.started
}

func cmdLastSave(c *rconn, _ [][]byte) {
	c.w.int64(c.s.lastSave(c.s.currentBackend().Stats()).Unix())
}

// cmdSave answers SAVE (a checkpoint, answered when written) and BGSAVE
// (started in the background).
func cmdSave(c *rconn, args [][]byte) {
	var nb [8]byte
	name := string(lowerName(nb[:], args[0]))
	if err := c.admin(strings.ToUpper(name)); err != nil {
		c.w.err(err)
		return
	}
	b := c.s.currentBackend()
	if !b.Stats().Persistent {
		c.w.err(errorf(CodeBadRequest, "the store is in memory: there is nothing to save to"))
		return
	}
	if name == "bgsave" {
		if !c.s.bgSave(b) {
			c.w.err(errorf(CodeBadRequest, "Background save already in progress"))
			return
		}
		c.w.simple("Background saving started")
		return
	}
	if err := b.Checkpoint(c.s.bgCtx); err != nil {
		c.w.err(err)
		return
	}
	c.w.ok()
}

// flushBatch is how many keys or triples one FLUSHALL batch removes.
const flushBatch = 10_000

// cmdFlushAll answers FLUSHALL and FLUSHDB [ASYNC|SYNC]: every key and
// triple is removed, in batches (not atomically), before the reply.
func cmdFlushAll(c *rconn, args [][]byte) {
	if len(args) > 2 {
		c.w.err(errorf(CodeBadRequest, "syntax error"))
		return
	}
	if !c.s.cfg.AllowFlushAll {
		c.w.err(&Error{Code: CodeForbidden, Msg: "FLUSHALL is disabled: the server must be started with it allowed"})
		return
	}
	if err := c.admin("FLUSHALL"); err != nil {
		c.w.err(err)
		return
	}
	b := c.s.currentBackend()
	err := c.flushEach(OpApply, func() int {
		for k := range b.Range(cid.Zero, cid.Zero) {
			c.cmd.Pairs = append(c.cmd.Pairs, store.PairOp{Kind: store.OpDeleteKey, Key: k})
			if len(c.cmd.Pairs) == flushBatch {
				break
			}
		}
		return len(c.cmd.Pairs)
	})
	if err == nil {
		err = c.flushEach(OpBatchDelete, func() int {
			for t := range b.Query(cid.Zero, cid.Zero, cid.Zero) {
				c.cmd.Triples = append(c.cmd.Triples, t)
				if len(c.cmd.Triples) == flushBatch {
					break
				}
			}
			return len(c.cmd.Triples)
		})
	}
	if err != nil {
		c.w.err(err)
		return
	}
	c.w.ok()
}

// flushEach runs commands of op until one is empty: fill adds up to
// flushBatch operands to the reset command and returns how many it added.
func (c *rconn) flushEach(op Op, fill func() int) error {
	for {
		c.cmd.Reset()
		c.cmd.Op = op
		if fill() == 0 {
			return nil
		}
		if err := c.exec(); err != nil {
			return err
		}
	}
}

// cmdInfo answers "INFO [section...]" with the store's and the server's
// figures in Redis's sections: server, clients, memory, persistence,
// stats, keyspace ("all", "everything" and "default" name them all).
func cmdInfo(c *rconn, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	b := c.s.currentBackend()
	st := b.Stats()
	sc := b.Config()
	var sb strings.Builder
	section := func(name string, kv ...any) {
		if !all && !want[strings.ToLower(name)] {
			return
		}
		if sb.Len() > 0 {
			sb.WriteString("\r\n")
		}
		sb.WriteString("# " + name + "\r\n")
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&sb, "%s:%v\r\n", kv[i], kv[i+1])
		}
	}
	up := time.Since(c.s.started)
	section("Server",
		"redis_version", respVersion,
		"cidstore_version", cidstoreVersion(),
		"redis_mode", "standalone",
		"os", runtime.GOOS+" "+runtime.GOARCH,
		"arch_bits", strconv.IntSize,
		"go_version", runtime.Version(),
		"process_id", os.Getpid(),
		"tcp_port", c.port(),
		"uptime_in_seconds", int64(up.Seconds()),
		"uptime_in_days", int64(up.Hours()/24),
		"shards", len(st.Shards))
	c.s.conns.mu.Lock()
	clients := len(c.s.conns.resp)
	zmqClients := len(c.s.conns.live)
	c.s.conns.mu.Unlock()
	section("Clients",
		"connected_clients", clients,
		"zmq_clients", zmqClients,
		"maxclients", c.s.cfg.MaxConns)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := residentBytes()
	section("Memory",
		"used_memory", ms.HeapAlloc,
		"used_memory_human", humanBytes(int64(ms.HeapAlloc)),
		"used_memory_rss", rss,
		"used_memory_rss_human", humanBytes(rss),
		"used_memory_sys", ms.Sys,
		"mem_allocator", "go",
		"gc_cycles", ms.NumGC)
	rdOnly, rdStatus := 0, "ok"
	if st.ReadOnly != "" {
		rdOnly, rdStatus = 1, "err"
	}
	bgStatus := "ok"
	if c.s.saveErr.Load() {
		bgStatus = "err"
	}
	section("Persistence",
		"loading", 0,
		"persistent", boolInt(st.Persistent),
		"aof_enabled", boolInt(st.Persistent),
		"appendfsync", respSync(sc),
		"sync_interval", sc.SyncInterval,
		"rdb_bgsave_in_progress", boolInt(c.s.saving.Load()),
		"rdb_saves", st.Checkpoints.Count,
		"rdb_last_save_time", c.s.lastSave(st).Unix(),
		"rdb_last_bgsave_status", bgStatus,
		"rdb_last_save_duration_ms", st.Checkpoints.LastDuration.Milliseconds(),
		"rdb_last_save_bytes", st.Checkpoints.LastBytes,
		"aof_last_write_status", rdStatus,
		"read_only", rdOnly,
		"read_only_reason", strings.ReplaceAll(st.ReadOnly, "\n", " "),
		"wal_appends", st.WAL.Appends,
		"wal_bytes", st.WAL.AppendedBytes,
		"wal_fsyncs", st.WAL.Fsyncs,
		"recovered_records", st.Recovery.Records)
	section("Stats",
		"total_commands_processed", c.s.metrics.total.Load(),
		"total_error_replies", c.s.metrics.failed.Load(),
		"inserts", st.Ops.Inserts,
		"deletes", st.Ops.Deletes,
		"delete_keys", st.Ops.DeleteKeys,
		"batches", st.Ops.Batches)
	section("Keyspace",
		"db0", fmt.Sprintf("keys=%d,expires=0,avg_ttl=0,pairs=%d,triples=%d", st.Keys, st.Pairs, st.Triples))
	c.w.bulkString(sb.String())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// port is the connection's local port, as INFO's tcp_port.
func (c *rconn) port() string {
	_, p, _ := net.SplitHostPort(c.nc.LocalAddr().String())
	return p
}

// residentBytes returns the process's resident set size (Linux), else
// the memory the Go runtime obtained from the system.
func residentBytes() int64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return pages * int64(os.Getpagesize())
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	f, u := float64(n), 0
	for f >= unit && u < 4 {
		f /= unit
		u++
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + string("BKMGT"[u])
}
