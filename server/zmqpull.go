package server

import (
	"errors"
	"time"

	"github.com/go-zeromq/zmq4"
)

// servePull applies the fire-and-forget mutations a PUSH client sends, in
// order; other commands are refused. Nothing is sent back: a failure is logged and counted (in
// cidstore_server_requests_total with its code) and the connection goes
// on.
func (s *Server) servePull(c *zconn) {
	h := s.newHandler(c.ep.name)
	h.mutations = true
	for {
		msg, err := c.zc.RecvMsg()
		if errors.Is(err, errMessageTooLarge) {
			if err := c.w.DiscardMessage(); err != nil {
				return
			}
			h.s.metrics.observe(h.proto, 0, ErrTooLarge, 0)
			s.log.Warn("push: message over the size limit dropped", "remote", c.nc.RemoteAddr(), "limit", s.cfg.MaxMessage)
			continue
		}
		if err != nil {
			return
		}
		if msg.Type == zmq4.CmdMsg {
			continue
		}
		start := time.Now()
		_, body := splitEnvelope(msg.Frames)
		if body == nil {
			err = errorf(CodeBadRequest, "want one message frame, got %d", len(msg.Frames))
			h.cmd.Op = 0
		} else {
			err = h.run(body)
		}
		h.s.metrics.observe(h.proto, h.cmd.Op, err, time.Since(start))
		if err != nil {
			e := asError(err)
			s.log.Warn("push: mutation failed", "remote", c.nc.RemoteAddr(), "command", h.cmd.Op.String(), "code", int(e.Code), "err", e.Msg)
		}
	}
}
