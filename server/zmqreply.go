package server

import (
	"errors"
	"time"

	"github.com/go-zeromq/zmq4"
)

// serveReply answers the requests of one REQ or DEALER client, in order,
// on the request-reply endpoints (the REQ/REP endpoint, served by a
// ROUTER-type socket, and the ROUTER/DEALER endpoint). Each request gets
// exactly one reply, an error reply included; a client may send its next
// request at once, and other clients are served meanwhile on their own
// connections.
func (s *Server) serveReply(c *zconn) {
	h := s.newHandler(c.ep.name)
	for {
		msg, err := c.zc.RecvMsg()
		if errors.Is(err, errMessageTooLarge) {
			if err := c.w.DiscardMessage(); err != nil {
				return
			}
			env, _ := splitEnvelope(msg.Frames)
			out := h.fail(errorf(CodeTooLarge, "message over the size limit of %d bytes (or %d frames)", s.cfg.MaxMessage, maxFrames))
			if err := c.send(append(env, out)...); err != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if msg.Type == zmq4.CmdMsg {
			continue // a PING zmq4 answered, or a command with no meaning here
		}
		s.metrics.inFlight.Inc()
		env, body := splitEnvelope(msg.Frames)
		var out []byte
		if body == nil {
			out = h.fail(errorf(CodeBadRequest, "want one message frame after the envelope, got %d frames", len(msg.Frames)))
		} else {
			out = h.handle(body)
		}
		err = c.send(append(env, out)...)
		s.metrics.inFlight.Dec()
		if err != nil {
			return // the client left; what it asked was done
		}
	}
}

// splitEnvelope splits a message as a REQ or DEALER client sends it: the
// routing envelope (every frame up to and including the first empty one)
// and the one body frame after it. A message without an empty frame has
// no envelope. body is nil unless exactly one frame follows the envelope.
func splitEnvelope(frames [][]byte) (env [][]byte, body []byte) {
	for i, f := range frames {
		if len(f) == 0 {
			env, frames = frames[:i+1], frames[i+1:]
			break
		}
	}
	if len(frames) != 1 {
		return env, nil
	}
	return env, frames[0]
}

// handler decodes, executes and encodes the requests of one connection.
type handler struct {
	s         *Server
	proto     string // metrics label: the endpoint
	mutations bool   // only mutations are accepted
	dec       *msgDecoder
	enc       *msgEncoder
	cmd       Command
	res       Result
}

func (s *Server) newHandler(proto string) *handler {
	return &handler{s: s, proto: proto, dec: newMsgDecoder(s.exec.lim), enc: newMsgEncoder()}
}

// run decodes and executes one request.
func (h *handler) run(body []byte) error {
	if err := h.dec.decode(body, &h.cmd); err != nil {
		return err
	}
	if h.mutations && !h.cmd.Op.Mutates() {
		return errorf(CodeBadRequest, "%s: this endpoint takes only mutations", h.cmd.Op)
	}
	return h.s.exec.Execute(&h.cmd, &h.res)
}

// handle runs one request and returns its encoded reply, which stays
// valid until the next call.
func (h *handler) handle(body []byte) []byte {
	start := time.Now()
	err := h.run(body)
	h.s.metrics.observe(h.proto, h.cmd.Op, err, time.Since(start))
	if err != nil {
		return h.fail(err)
	}
	return h.enc.result(&h.res)
}

// fail encodes an error reply, logging internal failures.
func (h *handler) fail(err error) []byte {
	e := asError(err)
	if e.Code >= 500 {
		h.s.log.Error("request failed", "endpoint", h.proto, "command", h.cmd.Op.String(), "code", int(e.Code), "err", e.Msg)
	}
	return h.enc.failure(e, h.proto)
}
