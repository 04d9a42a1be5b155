package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cidstore/cidstore/server"
)

// maxBody bounds a request or response body of the cluster endpoints.
const maxBody = 1 << 20

// membershipTimeout bounds a membership change.
const membershipTimeout = 30 * time.Second

// Register adds the cluster's endpoints (see the package documentation)
// to srv's control plane; call it before srv.ListenHTTP. The endpoints
// answer 503 until b has its node. c asks the other members for their
// status (nil: a default Client).
func Register(srv *server.Server, b *Backend, c *Client) {
	if c == nil {
		c = &Client{}
	}
	h := &handlers{b: b, client: c}
	srv.Route("GET /cluster", false, h.cluster)
	srv.Route("GET /cluster/node", false, h.node)
	srv.Route("POST /cluster/voters", true, h.addVoter)
	srv.Route("DELETE /cluster/voters/{id}", true, h.remove)
}

type handlers struct {
	b      *Backend
	client *Client
}

// AddRequest is the body of POST /cluster/voters.
type AddRequest struct {
	ID       string            `json:"id"`
	RaftAddr string            `json:"raft_addr"`
	Addrs    map[string]string `json:"addrs"` // the client addresses the node publishes
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (h *handlers) node(w http.ResponseWriter, _ *http.Request) {
	n := h.b.Node()
	if n == nil {
		server.WriteHTTPError(w, errStarting)
		return
	}
	writeJSON(w, nodeStatus(n.Status(), n.Meta()))
}

func (h *handlers) cluster(w http.ResponseWriter, r *http.Request) {
	n := h.b.Node()
	if n == nil {
		server.WriteHTTPError(w, errStarting)
		return
	}
	writeJSON(w, clusterStatus(r.Context(), n, h.client))
}

func (h *handlers) addVoter(w http.ResponseWriter, r *http.Request) {
	n := h.b.Node()
	if n == nil {
		server.WriteHTTPError(w, errStarting)
		return
	}
	var req AddRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.ID == "" || req.RaftAddr == "" {
		msg := `body: want {"id": ..., "raft_addr": ..., "addrs": {...}}`
		if err != nil {
			msg += ": " + err.Error()
		}
		server.WriteHTTPError(w, server.NewError(server.CodeBadRequest, msg, nil))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	if err := n.AddVoter(ctx, req.ID, req.RaftAddr, req.Addrs); err != nil {
		server.WriteHTTPError(w, Error(err))
		return
	}
	writeJSON(w, map[string]string{"status": "ok", "added": req.ID})
}

func (h *handlers) remove(w http.ResponseWriter, r *http.Request) {
	n := h.b.Node()
	if n == nil {
		server.WriteHTTPError(w, errStarting)
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	if err := n.RemoveServer(ctx, id); err != nil {
		server.WriteHTTPError(w, Error(err))
		return
	}
	writeJSON(w, map[string]string{"status": "ok", "removed": id})
}
