package server

import (
	"strconv"
	"strings"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// The RESP commands. Keys and members are CIDs, in any text form the
// msgpack protocol takes ("E(a,b,c,d)", the 128-bit "E(h,l)", 64 hex
// digits; decimal words may have leading zeros, so redis-benchmark's
// __rand_int__ fits: "E(__rand_int__,0,0,1)") or as 32 raw bytes. CIDs in
// replies are in the "E(a,b,c,d)" form. Every key is a set; the zero CID is
// neither a key nor a member.
//
//	SADD key member...      add members; the number that were new
//	SREM key member...      remove members; the number that were there
//	DEL key...              remove keys (UNLINK is the same); the number removed
//	SMEMBERS key            the members, ascending
//	SISMEMBER key member    1 or 0
//	SMISMEMBER key member...  1 or 0 for each
//	SCARD key               the number of members
//	EXISTS key...           how many of the keys exist
//	TYPE key                "set" or "none"
//	DBSIZE                  the number of keys
//	SCAN cursor [COUNT n]   keys in ascending order, n at a time (default 10)
//	SSCAN key cursor [COUNT n]  a key's members, likewise
//	TADD s p o [s p o...]   add triples atomically; the number that were new
//	TDEL s p o [s p o...]   remove triples atomically; the number removed
//	TQUERY s p o [LIMIT n]  matching triples, "*" a wildcard; each [s, p, o]
//	TCOUNT [s p o]          the number of matching triples (all without a pattern)
//	MULTI, EXEC, DISCARD    SADD, SREM and DEL queued and applied as one atomic batch
//	PING, ECHO, SELECT 0, QUIT, HELLO [2|3], AUTH, CLIENT, COMMAND, CONFIG GET,
//	INFO, LASTSAVE, SAVE, BGSAVE, FLUSHALL (FLUSHDB)
//
// SCAN and SSCAN cursors are handles the server keeps (the last 4096 in
// use) for the position reached: an iteration returns every key present
// from its start to its end exactly once, in order; an expired cursor is
// an error. MATCH is accepted only as "*", TYPE only as "set".
//
// SAVE, BGSAVE and FLUSHALL change the server's state beyond the data, so
// like the control plane's POST /checkpoint they need the server's token
// (AUTH token) and are refused when none is configured; FLUSHALL moreover
// needs Config.AllowFlushAll. FLUSHALL removes keys and triples in batches:
// it is not atomic.

// respCmd is one command: its name, its arity as Redis gives it (n: exactly
// n arguments with the name; -n: at least n), and how it runs. A write of
// pairs has pairs instead of run: it only decodes its operations, so that
// consecutive writes can be applied together.
type respCmd struct {
	name  string
	arity int
	flags []string // for COMMAND
	// keys says where its keys are, for COMMAND: 0 none, 1 the first
	// argument, -1 every argument.
	keys  int
	run   func(c *rconn, args [][]byte)
	pairs func(c *rconn, args [][]byte, ops []store.PairOp) ([]store.PairOp, error)
	// reply answers a write of pairs given what each of its operations
	// changed.
	reply func(w *respWriter, changed []bool)
}

var respCommands map[string]*respCmd

func init() {
	cmds := []*respCmd{
		{name: "sadd", arity: -3, keys: 1, flags: fWrite, pairs: setPairs(store.OpInsert), reply: replyChanged},
		{name: "srem", arity: -3, keys: 1, flags: fWrite, pairs: setPairs(store.OpDelete), reply: replyChanged},
		{name: "del", arity: -2, keys: -1, flags: fWrite, pairs: delPairs, reply: replyChanged},
		{name: "unlink", arity: -2, keys: -1, flags: fWrite, pairs: delPairs, reply: replyChanged},
		{name: "smembers", arity: 2, keys: 1, flags: fRead, run: cmdSMembers},
		{name: "sismember", arity: 3, keys: 1, flags: fRead, run: cmdSIsMember},
		{name: "smismember", arity: -3, keys: 1, flags: fRead, run: cmdSIsMember},
		{name: "scard", arity: 2, keys: 1, flags: fRead, run: cmdSCard},
		{name: "exists", arity: -2, keys: -1, flags: fRead, run: cmdExists},
		{name: "type", arity: 2, keys: 1, flags: fRead, run: cmdType},
		{name: "dbsize", arity: 1, flags: fRead, run: cmdDBSize},
		{name: "scan", arity: -2, flags: fRead, run: cmdScan},
		{name: "sscan", arity: -3, keys: 1, flags: fRead, run: cmdSScan},
		{name: "tadd", arity: -4, flags: fWrite, run: cmdTriples(OpBatchInsert)},
		{name: "tdel", arity: -4, flags: fWrite, run: cmdTriples(OpBatchDelete)},
		{name: "tquery", arity: -4, flags: fRead, run: cmdTQuery},
		{name: "tcount", arity: -1, flags: fRead, run: cmdTCount},
		{name: "multi", arity: 1, flags: fAdmin, run: cmdMulti},
		{name: "exec", arity: 1, flags: fAdmin, run: cmdExec},
		{name: "discard", arity: 1, flags: fAdmin, run: cmdDiscard},
		{name: "ping", arity: -1, flags: fFast, run: cmdPing},
		{name: "echo", arity: 2, flags: fFast, run: func(c *rconn, args [][]byte) { c.w.bulk(args[1]) }},
		{name: "select", arity: 2, flags: fFast, run: cmdSelect},
		{name: "quit", arity: -1, flags: fFast, run: func(c *rconn, _ [][]byte) { c.w.ok(); c.quit = true }},
		{name: "hello", arity: -1, flags: fFast, run: cmdHello},
		{name: "auth", arity: -2, flags: fFast, run: cmdAuth},
		{name: "client", arity: -2, flags: fAdmin, run: cmdClient},
		{name: "command", arity: -1, flags: fAdmin, run: cmdCommand},
		{name: "config", arity: -2, flags: fAdmin, run: cmdConfig},
		{name: "info", arity: -1, flags: fAdmin, run: cmdInfo},
		{name: "lastsave", arity: 1, flags: fAdmin, run: cmdLastSave},
		{name: "save", arity: 1, flags: fAdmin, run: cmdSave},
		{name: "bgsave", arity: -1, flags: fAdmin, run: cmdSave},
		{name: "flushall", arity: -1, flags: fWrite, run: cmdFlushAll},
		{name: "flushdb", arity: -1, flags: fWrite, run: cmdFlushAll},
	}
	respCommands = make(map[string]*respCmd, len(cmds))
	for _, rc := range cmds {
		respCommands[rc.name] = rc
	}
}

// Command flags, as COMMAND reports them.
var (
	fWrite = []string{"write"}
	fRead  = []string{"readonly", "fast"}
	fFast  = []string{"fast"}
	fAdmin = []string{"admin"}
)

// run executes a batch of requests in order; nothing after a QUIT runs.
func (c *rconn) run(reqs []respReq) {
	for _, q := range reqs {
		if c.quit {
			break
		}
		if q.tooLarge {
			c.reject(errorf(CodeTooLarge, "request over the size limit of %d bytes (or %d arguments)", c.rd.max, c.rd.maxArgs))
			continue
		}
		c.dispatch(c.rd.args(q))
	}
	c.endGroup()
}

// reject answers a request that did not run with err, after the pending
// writes before it.
func (c *rconn) reject(err error) {
	c.endGroup()
	c.failed++
	c.fail(err)
}

// fail answers the current request with an error; within MULTI the
// transaction is then discarded at EXEC, as Redis does.
func (c *rconn) fail(err error) {
	if c.txn != nil {
		c.txn.aborted = true
	}
	c.w.err(err)
}

// dispatch runs one request: a write of pairs joins the pending group (or
// the transaction), anything else first applies the group.
func (c *rconn) dispatch(args [][]byte) {
	var nb [24]byte
	rc := respCommands[string(lowerName(nb[:], args[0]))]
	switch {
	case rc == nil:
		c.reject(errorf(CodeBadRequest, "unknown command '%s', with args beginning with: %s", clipArg(args[0]), argsPreview(args[1:])))
		return
	case (rc.arity > 0 && len(args) != rc.arity) || (rc.arity < 0 && len(args) < -rc.arity):
		c.reject(errorf(CodeBadRequest, "wrong number of arguments for '%s' command", rc.name))
		return
	}
	if rc.pairs == nil {
		c.endGroup()
		if c.txn != nil && rc.name != "exec" && rc.name != "discard" && rc.name != "multi" && rc.name != "quit" {
			c.failed++
			c.fail(errorf(CodeBadRequest, "%s is not allowed in MULTI: only SADD, SREM and DEL are", rc.name))
			return
		}
		rc.run(c, args)
		return
	}
	if c.txn != nil {
		c.txn.queue(c, rc, args)
		return
	}
	g := &c.group
	n := len(g.ops)
	ops, err := c.decodePairs(rc, args, g.ops)
	if err != nil {
		g.ops = ops
		c.reject(err)
		return
	}
	if len(ops) > c.s.exec.lim.MaxBatch && n > 0 {
		// Too much for one batch with the writes before it: apply those
		// first, then this one in a group of its own.
		moved := append(c.group.spare[:0], ops[n:]...)
		g.ops = ops[:n]
		c.endGroup()
		g.ops, g.spare = append(g.ops, moved...), moved
		n = 0
	} else {
		g.ops = ops
	}
	g.cmds = append(g.cmds, groupedCmd{rc: rc, lo: n, hi: len(g.ops)})
}

// respGroup is the pending run of consecutive pair writes of a pipeline.
type respGroup struct {
	ops   []store.PairOp
	cmds  []groupedCmd
	spare []store.PairOp
}

type groupedCmd struct {
	rc     *respCmd
	lo, hi int // its operations
}

// endGroup applies the pending writes as one batch and answers each.
func (c *rconn) endGroup() {
	g := &c.group
	if len(g.cmds) == 0 {
		return
	}
	if err := c.applyPairs(g.ops); err != nil {
		for range g.cmds {
			c.w.err(err)
		}
	} else {
		c.done[OpApply] += int64(len(g.cmds) - 1) // exec counted the batch once
		c.replyEach(g.cmds)
	}
	g.ops, g.cmds = g.ops[:0], g.cmds[:0]
}

// decodePairs appends the operations of a write of pairs to ops and
// checks them; on an error it returns ops as they were before.
func (c *rconn) decodePairs(rc *respCmd, args [][]byte, ops []store.PairOp) ([]store.PairOp, error) {
	n := len(ops)
	ops, err := rc.pairs(c, args, ops)
	if err == nil {
		err = checkPairs(OpApply, ops[n:])
	}
	if err != nil {
		return ops[:n], err
	}
	return ops, nil
}

// applyPairs applies ops as one atomic batch; c.res.Changes then says
// what each changed.
func (c *rconn) applyPairs(ops []store.PairOp) error {
	c.cmd.Reset()
	c.cmd.Op, c.cmd.Pairs = OpApply, ops
	err := c.exec()
	c.cmd.Pairs = nil // ops stay the caller's
	return err
}

// replyEach answers each grouped write from c.res.Changes.
func (c *rconn) replyEach(cmds []groupedCmd) {
	for _, gc := range cmds {
		gc.rc.reply(&c.w, c.res.Changes[gc.lo:gc.hi])
	}
}

// replyChanged answers SADD, SREM and DEL: how many operations changed
// the store.
func replyChanged(w *respWriter, changed []bool) {
	n := 0
	for _, ch := range changed {
		if ch {
			n++
		}
	}
	w.int(n)
}

// setPairs decodes "SADD key member..." or "SREM key member...".
func setPairs(kind store.PairOpKind) func(*rconn, [][]byte, []store.PairOp) ([]store.PairOp, error) {
	return func(_ *rconn, args [][]byte, ops []store.PairOp) ([]store.PairOp, error) {
		k, err := argCID(args[1])
		if err != nil {
			return ops, err
		}
		for _, a := range args[2:] {
			v, err := argCID(a)
			if err != nil {
				return ops, err
			}
			ops = append(ops, store.PairOp{Kind: kind, Key: k, Value: v})
		}
		return ops, nil
	}
}

// delPairs decodes "DEL key...".
func delPairs(_ *rconn, args [][]byte, ops []store.PairOp) ([]store.PairOp, error) {
	for _, a := range args[1:] {
		k, err := argCID(a)
		if err != nil {
			return ops, err
		}
		ops = append(ops, store.PairOp{Kind: store.OpDeleteKey, Key: k})
	}
	return ops, nil
}

// argCID reads a key or member: 32 raw bytes, or CID text (a 32-byte
// argument is text only if it parses as text).
func argCID(b []byte) (cid.CID, error) {
	if len(b) == cid.Size {
		// Of the text forms only "E(...)" can be 32 bytes long; anything
		// else is raw without trying it as text, whose error allocates.
		if b[0] == 'E' && b[1] == '(' && b[len(b)-1] == ')' {
			if v, err := parseCIDText(b); err == nil {
				return v, nil
			}
		}
		return cid.CID(b), nil
	}
	v, err := parseCIDText(b)
	if err != nil {
		// "invalid CID: ...", without the cid package's prefix.
		return cid.Zero, &Error{Code: CodeBadRequest, Msg: strings.TrimPrefix(err.Error(), "cid: "), err: err}
	}
	return v, nil
}

// argPattern reads a triple pattern component: a CID, or "*" for any.
func argPattern(b []byte) (cid.CID, error) {
	if len(b) == 1 && b[0] == '*' {
		return cid.Zero, nil
	}
	return argCID(b)
}

// argInt reads a non-negative integer argument.
func argInt(b []byte) (int, error) {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return 0, errorf(CodeBadRequest, "value is not an integer or out of range")
	}
	return n, nil
}

func argsPreview(args [][]byte) string {
	s := ""
	for i, a := range args {
		if i == 4 {
			s += "..."
			break
		}
		s += "'" + clipArg(a) + "' "
	}
	return s
}

// respTxn is a MULTI transaction: the queued writes and their operations.
type respTxn struct {
	ops     []store.PairOp
	cmds    []groupedCmd
	aborted bool
}

func (t *respTxn) queue(c *rconn, rc *respCmd, args [][]byte) {
	n := len(t.ops)
	ops, err := c.decodePairs(rc, args, t.ops)
	t.ops = ops
	if err != nil {
		c.failed++
		c.fail(err)
		return
	}
	t.cmds = append(t.cmds, groupedCmd{rc: rc, lo: n, hi: len(ops)})
	c.w.simple("QUEUED")
}

func cmdMulti(c *rconn, _ [][]byte) {
	if c.txn != nil {
		c.w.err(errorf(CodeBadRequest, "MULTI calls can not be nested"))
		return
	}
	c.txn = &respTxn{}
	c.w.ok()
}

func cmdDiscard(c *rconn, _ [][]byte) {
	if c.txn == nil {
		c.w.err(errorf(CodeBadRequest, "DISCARD without MULTI"))
		return
	}
	c.txn = nil
	c.w.ok()
}

// cmdExec applies the transaction's writes as one atomic batch and
// answers with each write's reply; an error applies none of them.
func cmdExec(c *rconn, _ [][]byte) {
	t := c.txn
	if t == nil {
		c.w.err(errorf(CodeBadRequest, "EXEC without MULTI"))
		return
	}
	c.txn = nil
	if t.aborted {
		c.w.errorString("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	if err := c.applyPairs(t.ops); err != nil {
		c.w.err(err)
		return
	}
	c.w.array(len(t.cmds))
	c.replyEach(t.cmds)
}

func cmdSMembers(c *rconn, args [][]byte) {
	k, err := argCID(args[1])
	if err != nil {
		c.fail(err)
		return
	}
	c.cmd.Reset()
	c.cmd.Op, c.cmd.Key = OpLookup, k
	if err := c.exec(); err != nil {
		c.w.err(err)
		return
	}
	c.w.set(len(c.res.Values))
	for _, v := range c.res.Values {
		c.w.cid(v)
	}
}

// cmdSIsMember answers SISMEMBER (an integer) and SMISMEMBER (an array).
func cmdSIsMember(c *rconn, args [][]byte) {
	k, err := argCID(args[1])
	if err != nil {
		c.w.err(err)
		return
	}
	c.cmd.Reset()
	c.cmd.Op, c.cmd.Key = OpContains, k
	if c.cmd.Values, err = appendCIDs(c.cmd.Values, args[2:]); err != nil {
		c.w.err(err)
		return
	}
	if err := c.exec(); err != nil {
		c.w.err(err)
		return
	}
	multi := len(args[0]) == len("smismember")
	if multi {
		c.w.array(len(c.res.Found))
	}
	for _, f := range c.res.Found {
		c.w.int(boolInt(f))
	}
}

// count runs OpCount over keys.
func (c *rconn) count(keys [][]byte) error {
	c.cmd.Reset()
	c.cmd.Op = OpCount
	var err error
	if c.cmd.Values, err = appendCIDs(c.cmd.Values, keys); err != nil {
		return err
	}
	return c.exec()
}

func cmdSCard(c *rconn, args [][]byte) {
	if err := c.count(args[1:]); err != nil {
		c.w.err(err)
		return
	}
	c.w.int(c.res.Counts[0])
}

func cmdExists(c *rconn, args [][]byte) {
	if err := c.count(args[1:]); err != nil {
		c.w.err(err)
		return
	}
	n := 0
	for _, k := range c.res.Counts {
		if k > 0 {
			n++
		}
	}
	c.w.int(n)
}

func cmdType(c *rconn, args [][]byte) {
	if err := c.count(args[1:]); err != nil {
		c.w.err(err)
		return
	}
	if c.res.Counts[0] > 0 {
		c.w.simple("set")
	} else {
		c.w.simple("none")
	}
}

func cmdDBSize(c *rconn, _ [][]byte) {
	c.cmd.Reset()
	c.cmd.Op = OpMetrics
	if err := c.exec(); err != nil {
		c.w.err(err)
		return
	}
	for _, m := range c.res.Metrics {
		if m.Name == "keys" {
			c.w.int64(m.Value)
			return
		}
	}
	c.w.int(0)
}

// cmdTriples answers TADD and TDEL: the triples as one atomic batch.
func cmdTriples(op Op) func(*rconn, [][]byte) {
	return func(c *rconn, args [][]byte) {
		if (len(args)-1)%3 != 0 {
			c.w.err(errorf(CodeBadRequest, "wrong number of arguments for '%s' command: want s p o triples", clipArg(args[0])))
			return
		}
		c.cmd.Reset()
		c.cmd.Op = op
		for i := 1; i < len(args); i += 3 {
			t, err := argTriple(args[i:i+3], argCID)
			if err != nil {
				c.w.err(err)
				return
			}
			c.cmd.Triples = append(c.cmd.Triples, t)
		}
		if err := c.exec(); err != nil {
			c.w.err(err)
			return
		}
		c.w.int(c.res.Changed)
	}
}

// pattern reads "s p o" with "*" wildcards.
func pattern(args [][]byte) (Triple, error) {
	return argTriple(args, argPattern)
}

// argTriple reads "s p o" from args[0:3], each component with read.
func argTriple(args [][]byte, read func([]byte) (cid.CID, error)) (Triple, error) {
	var t Triple
	for j, dst := range []*cid.CID{&t.S, &t.P, &t.O} {
		v, err := read(args[j])
		if err != nil {
			return t, err
		}
		*dst = v
	}
	return t, nil
}

// appendCIDs appends the keys or members in args to dst.
func appendCIDs(dst []cid.CID, args [][]byte) ([]cid.CID, error) {
	for _, a := range args {
		v, err := argCID(a)
		if err != nil {
			return dst, err
		}
		dst = append(dst, v)
	}
	return dst, nil
}

// cmdTQuery answers "TQUERY s p o [LIMIT n]": an array of [s, p, o].
func cmdTQuery(c *rconn, args [][]byte) {
	p, err := pattern(args[1:4])
	if err != nil {
		c.w.err(err)
		return
	}
	limit := 0
	var nb [8]byte
	switch rest := args[4:]; {
	case len(rest) == 0:
	case len(rest) == 2 && string(lowerName(nb[:], rest[0])) == "limit":
		if limit, err = argInt(rest[1]); err != nil {
			c.w.err(err)
			return
		}
		if limit == 0 {
			c.w.array(0)
			return
		}
	default:
		c.w.err(errorf(CodeBadRequest, "syntax error: TQUERY s p o [LIMIT n]"))
		return
	}
	c.cmd.Reset()
	c.cmd.Op, c.cmd.Pattern, c.cmd.Limit = OpQuery, p, limit
	if err := c.exec(); err != nil {
		c.w.err(err)
		return
	}
	c.w.array(len(c.res.Triples))
	for _, t := range c.res.Triples {
		c.w.array(3)
		c.w.cid(t.S)
		c.w.cid(t.P)
		c.w.cid(t.O)
	}
}

// cmdTCount answers "TCOUNT [s p o]".
func cmdTCount(c *rconn, args [][]byte) {
	var p Triple
	switch len(args) {
	case 1:
	case 4:
		var err error
		if p, err = pattern(args[1:]); err != nil {
			c.w.err(err)
			return
		}
	default:
		c.w.err(errorf(CodeBadRequest, "wrong number of arguments for 'tcount' command: TCOUNT [s p o]"))
		return
	}
	c.cmd.Reset()
	c.cmd.Op, c.cmd.Pattern = OpCountTriples, p
	if err := c.exec(); err != nil {
		c.w.err(err)
		return
	}
	c.w.int(c.res.Count)
}

func cmdPing(c *rconn, args [][]byte) {
	switch len(args) {
	case 1:
		c.cmd.Reset()
		c.cmd.Op = OpPing
		c.exec()
		c.w.simple("PONG")
	case 2:
		c.w.bulk(args[1])
	default:
		c.w.err(errorf(CodeBadRequest, "wrong number of arguments for 'ping' command"))
	}
}

func cmdSelect(c *rconn, args [][]byte) {
	if string(args[1]) != "0" {
		c.w.err(errorf(CodeBadRequest, "DB index is out of range (the store has one database, 0)"))
		return
	}
	c.w.ok()
}
