package server

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"

	"github.com/cidstore/cidstore/cid"
)

// SCAN and SSCAN iterate keys and members in ascending order. A Redis
// cursor is a 64-bit number and a position here is a 256-bit CID, so the
// server keeps the positions and hands out numbers for them: the cursor
// table remembers the last maxCursors positions it gave out, shared by all
// connections (a client library may continue an iteration on another
// connection of its pool). A cursor stays valid until it is evicted and
// may be used more than once; an evicted or unknown one is an error.

const maxCursors = 4096

// scanPos is where an iteration continues: at the first key (SCAN) or
// member of key (SSCAN) not below from.
type scanPos struct {
	key, from cid.CID
}

type scanCursors struct {
	mu   sync.Mutex
	pos  map[uint64]scanPos
	ring [maxCursors]uint64 // the cursors in the order given out
	next int                // ring slot of the next cursor
}

// put remembers p and returns its cursor, evicting the oldest one.
func (t *scanCursors) put(p scanPos) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pos == nil {
		t.pos = make(map[uint64]scanPos)
	}
	delete(t.pos, t.ring[t.next])
	for {
		id := rand.Uint64() >> 1 // below 2^63, so any client parses it
		if _, taken := t.pos[id]; id != 0 && !taken {
			t.pos[id] = p
			t.ring[t.next] = id
			t.next = (t.next + 1) % maxCursors
			return id
		}
	}
}

// get returns the position of cursor id; "0" is the start.
func (t *scanCursors) get(arg []byte, key cid.CID) (scanPos, error) {
	if string(arg) == "0" {
		return scanPos{key: key}, nil
	}
	id, err := strconv.ParseUint(string(arg), 10, 64)
	if err != nil {
		return scanPos{}, errorf(CodeBadRequest, "invalid cursor")
	}
	t.mu.Lock()
	p, ok := t.pos[id]
	t.mu.Unlock()
	if !ok || p.key != key {
		return scanPos{}, errorf(CodeBadRequest, "invalid cursor %d: unknown, expired or of another iteration", id)
	}
	return p, nil
}

// scanOptions reads "[MATCH *] [COUNT n] [TYPE set]"; only an empty
// result fits a TYPE other than set.
func scanOptions(args [][]byte) (count int, none bool, err error) {
	count = 10
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			return 0, false, errorf(CodeBadRequest, "syntax error")
		}
		var nb [8]byte
		v := args[i+1]
		switch string(lowerName(nb[:], args[i])) {
		case "count":
			if count, err = argInt(v); err != nil || count == 0 {
				return 0, false, errorf(CodeBadRequest, "value is out of range, must be positive")
			}
		case "match":
			if string(v) != "*" {
				return 0, false, errorf(CodeBadRequest, "MATCH patterns are not supported: keys are CIDs (only MATCH * is)")
			}
		case "type":
			none = string(lowerName(nb[:], v)) != "set"
		default:
			return 0, false, errorf(CodeBadRequest, "syntax error")
		}
	}
	return count, none, nil
}

// scanReply writes [cursor, items...]: cursor "0" when the iteration is
// over, else a cursor for next.
func (c *rconn) scanReply(more bool, next scanPos, items []cid.CID) {
	c.w.array(2)
	if more {
		var buf [20]byte
		c.w.bulk(strconv.AppendUint(buf[:0], c.s.cursors.put(next), 10))
	} else {
		c.w.bulkString("0")
	}
	c.w.array(len(items))
	for _, v := range items {
		c.w.cid(v)
	}
}

// cmdScan answers "SCAN cursor [MATCH *] [COUNT n] [TYPE set]".
func cmdScan(c *rconn, args [][]byte) {
	p, err := c.s.cursors.get(args[1], cid.Zero)
	if err == nil {
		var count int
		var none bool
		if count, none, err = scanOptions(args[2:]); err == nil && none {
			c.scanReply(false, scanPos{}, nil)
			return
		}
		c.cmd.Reset()
		c.cmd.Op, c.cmd.Key, c.cmd.Limit = OpScan, p.from, count
	}
	if err == nil {
		err = c.exec()
	}
	if err != nil {
		c.w.err(err)
		return
	}
	c.scanReply(c.res.Truncated, scanPos{from: c.res.Next}, c.res.Values)
}

// cmdSScan answers "SSCAN key cursor [MATCH *] [COUNT n]".
func cmdSScan(c *rconn, args [][]byte) {
	k, err := argCID(args[1])
	var p scanPos
	if err == nil {
		p, err = c.s.cursors.get(args[2], k)
	}
	count, none := 0, false
	if err == nil {
		count, none, err = scanOptions(args[3:])
	}
	if err == nil {
		c.cmd.Reset()
		c.cmd.Op, c.cmd.Key = OpLookup, k
		err = c.exec()
	}
	if err != nil {
		c.w.err(err)
		return
	}
	vs := c.res.Values
	if none {
		vs = nil
	}
	i, _ := slices.BinarySearchFunc(vs, p.from, cid.Compare)
	vs = vs[i:]
	if len(vs) > count {
		c.scanReply(true, scanPos{key: k, from: vs[count]}, vs[:count])
		return
	}
	c.scanReply(false, scanPos{}, vs)
}
