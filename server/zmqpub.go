package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cidstore/cidstore/store"
	"github.com/go-zeromq/zmq4"
)

// Notifications on the PUB endpoint, one single-frame msgpack map each:
//
//	{"type": "heartbeat", "version": "1.0", "seq": n}        every second (Config.Heartbeat)
//	{"type": "insert"|"delete"|"batch_insert"|"batch_delete", "version": "1.0",
//	 "kind": "triple"|"pair", "count": items, "changed": n, "args": [...]}
//
// A mutation is announced once it is durable. "changed" (triple mutations
// only) counts the triples added or removed. "args" comes with the single
// insert and delete only: [s, p, o] for a triple, [key, value] for a pair
// (value nil when a whole key was deleted), as "E(a,b,c,d)" strings;
// batches announce their size, not their items.
//
// Subscribers filter by prefix of the raw message bytes, as ZeroMQ does;
// subscribe to the empty prefix to get everything. A subscriber that does
// not keep up loses notifications (pubQueue per subscriber, then dropped
// and counted in cidstore_server_pub_dropped_total), as with a ZeroMQ PUB
// socket at its high-water mark; publishing never slows the writers.

// pubQueue is how many notifications wait for one subscriber before new
// ones are dropped.
const pubQueue = 1024

// hub fans notifications out to the subscribers of the PUB endpoint.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]bool
	n    atomic.Int32 // len(subs), read without the lock
	seq  atomic.Uint64
	enc  *msgEncoder // guarded by mu
	drop func()      // counts a dropped notification
}

// subscriber is one SUB connection.
type subscriber struct {
	c      *zconn
	q      chan []byte
	mu     sync.Mutex
	topics map[string]int // subscribed prefixes, with repeat counts
}

func newHub(drop func()) *hub {
	return &hub{subs: map[*subscriber]bool{}, enc: newMsgEncoder(), drop: drop}
}

// wants reports whether msg matches one of the subscriber's prefixes.
func (sub *subscriber) wants(msg []byte) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for t := range sub.topics {
		if len(t) <= len(msg) && string(msg[:len(t)]) == t {
			return true
		}
	}
	return false
}

// publish encodes a notification with fill (under the hub's lock) and
// queues it for every subscriber that wants it.
func (h *hub) publish(fill func(*msgEncoder)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	fill(h.enc)
	msg := append([]byte(nil), h.enc.buf.Bytes()...)
	for sub := range h.subs {
		if !sub.wants(msg) {
			continue
		}
		select {
		case sub.q <- msg:
		default:
			h.drop()
		}
	}
}

// heartbeat publishes one heartbeat.
func (h *hub) heartbeat() {
	if h.n.Load() == 0 {
		return
	}
	seq := h.seq.Add(1)
	h.publish(func(me *msgEncoder) {
		me.start(3)
		me.str("type", "heartbeat")
		me.str("version", apiVersion)
		me.int("seq", int64(seq))
	})
}

// mutation announces a mutation that succeeded.
func (h *hub) mutation(c *Command, r *Result) {
	if h.n.Load() == 0 {
		return
	}
	h.publish(func(me *msgEncoder) {
		fields := 4
		if r.Changed >= 0 {
			fields++
		}
		single := c.Op == OpInsert || c.Op == OpDelete
		if single {
			fields++
		}
		me.start(fields)
		me.str("type", c.Op.String())
		me.str("version", apiVersion)
		kind := "pair"
		if len(c.Triples) > 0 {
			kind = "triple"
		}
		me.str("kind", kind)
		me.int("count", int64(c.Items()))
		if r.Changed >= 0 {
			me.int("changed", int64(r.Changed))
		}
		if !single {
			return
		}
		_ = me.e.EncodeString("args")
		switch {
		case len(c.Triples) == 1:
			t := c.Triples[0]
			_ = me.e.EncodeArrayLen(3)
			me.cid(t.S)
			me.cid(t.P)
			me.cid(t.O)
		case len(c.Pairs) == 1:
			p := c.Pairs[0]
			_ = me.e.EncodeArrayLen(2)
			me.cid(p.Key)
			if p.Kind == store.OpDeleteKey {
				_ = me.e.EncodeNil()
			} else {
				me.cid(p.Value)
			}
		default:
			_ = me.e.EncodeArrayLen(0)
		}
	})
}

// servePub serves one SUB client: its subscriptions arrive on this
// goroutine, notifications leave on another.
func (s *Server) servePub(c *zconn) {
	sub := &subscriber{c: c, q: make(chan []byte, pubQueue), topics: map[string]int{}}
	h := s.hub
	h.mu.Lock()
	h.subs[sub] = true
	h.n.Store(int32(len(h.subs)))
	h.mu.Unlock()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sub.write(done)
	}()
	defer func() {
		h.mu.Lock()
		delete(h.subs, sub)
		h.n.Store(int32(len(h.subs)))
		h.mu.Unlock()
		close(done)
		wg.Wait()
	}()
	for {
		msg, err := c.zc.RecvMsg()
		if errors.Is(err, errMessageTooLarge) {
			if c.w.DiscardMessage() != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if msg.Type == zmq4.CmdMsg || len(msg.Frames) == 0 || len(msg.Frames[0]) == 0 {
			continue
		}
		f := msg.Frames[0]
		topic := string(f[1:])
		sub.mu.Lock()
		switch f[0] {
		case 1:
			sub.topics[topic]++
		case 0:
			if sub.topics[topic]--; sub.topics[topic] <= 0 {
				delete(sub.topics, topic)
			}
		}
		sub.mu.Unlock()
	}
}

// write sends queued notifications until done closes, flushing whenever
// the queue runs empty.
func (sub *subscriber) write(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case msg := <-sub.q:
			if err := sub.c.zc.SendMsg(zmq4.NewMsg(msg)); err != nil {
				sub.c.nc.Close() // ends the reading side too
				return
			}
			if len(sub.q) == 0 {
				if err := sub.c.w.Flush(); err != nil {
					sub.c.nc.Close()
					return
				}
			}
		}
	}
}

// beat publishes heartbeats every interval until stop closes.
func (s *Server) beat(interval time.Duration, stop <-chan struct{}) {
	defer s.loops.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.hub.heartbeat()
		}
	}
}
