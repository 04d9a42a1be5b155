package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cidstore/cidstore/store"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The HTTP control plane:
//
//	GET  /health              200 "ok" while the process serves
//	GET  /ready               200 "ready" once the store is open and the
//	                          endpoints bound, 503 "not ready" before and
//	                          while draining
//	GET  /metrics             Prometheus text exposition (also at
//	GET  /metrics/prometheus  the Python service's path)
//	GET  /config              the live configuration as JSON (config.go)
//	PUT  /config              change fields of it: a JSON object; bearer token
//	POST /checkpoint          write a snapshot now; bearer token
//	GET  /debug/pprof/...     Go profiles, only when the listener is on
//	                          a loopback address
//
// and the routes added with Route (a replicated server's /cluster).
//
// Changes need "Authorization: Bearer <token>" with the configured token:
// 401 without a valid one, 403 when no token is configured at all. Errors
// are JSON: {"error_code": 400, "error_msg": "...", "version": "1.0"}.

// maxConfigBody bounds a PUT /config body.
const maxConfigBody = 1 << 20

func (s *Server) httpHandler(loopback bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready")
			return
		}
		io.WriteString(w, "ready")
	})
	prom := promhttp.HandlerFor(s.metrics.gatherer(s.currentBackend), promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
	mux.Handle("GET /metrics", prom)
	mux.Handle("GET /metrics/prometheus", prom)
	mux.HandleFunc("GET /config", s.withBackend(func(w http.ResponseWriter, _ *http.Request, b Backend) {
		writeJSON(w, http.StatusOK, configJSON(b.Config()))
	}))
	mux.HandleFunc("PUT /config", s.authorized(s.withBackend(s.putConfig)))
	mux.HandleFunc("POST /checkpoint", s.authorized(s.withBackend(s.checkpoint)))
	for _, rt := range s.routes {
		h := rt.h
		if rt.auth {
			h = s.authorized(h)
		}
		mux.HandleFunc(rt.pattern, h)
	}
	if loopback {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		mux.ServeHTTP(rec, r)
		path := r.URL.Path
		if strings.HasPrefix(path, "/debug/pprof/") {
			path = "/debug/pprof/"
		} else if _, pattern := mux.Handler(r); pattern == "" {
			path = "other" // keep the label set bounded
		}
		s.metrics.httpReqs.WithLabelValues(path, strconv.Itoa(rec.code)).Inc()
	})
}

// route is a handler added to the control plane with Route.
type route struct {
	pattern string
	auth    bool
	h       http.HandlerFunc
}

// Route adds a handler to the HTTP control plane, for a pattern of
// net/http.ServeMux ("POST /cluster/voters"); with auth, a request needs
// the bearer token, as PUT /config does. Call it before ListenHTTP.
func (s *Server) Route(pattern string, auth bool, h http.HandlerFunc) {
	s.routes = append(s.routes, route{pattern, auth, h})
}

// WriteHTTPError answers an HTTP request with err in the control plane's
// JSON error form and err's Code as the status (asError classifies errors
// that are not an *Error). A redirect also carries "leader", the leader's
// HTTP address, when it published one.
func WriteHTTPError(w http.ResponseWriter, err error) {
	writeError(w, asError(err))
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers (pprof's trace) flush through.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// slogPrinter adapts the server's logger to promhttp's error log.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) {
	p.s.log.Warn("metrics: gathering failed", "err", fmt.Sprint(v...))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.Code == CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cidstore"`)
	}
	body := map[string]any{"error_code": int(e.Code), "error_msg": e.Msg, "version": apiVersion}
	if a := e.Leader["http"]; e.Code == CodeRedirect && a != "" {
		body["leader"] = a
	}
	writeJSON(w, int(e.Code), body)
}

// authorized lets a request through only with the configured bearer
// token.
func (s *Server) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token == "" {
			writeError(w, errorf(CodeForbidden, "no token is configured, so no changes are allowed (set -token-file or CIDSTORE_TOKEN)"))
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.Token)) != 1 {
			writeError(w, errorf(CodeUnauthorized, "missing or wrong bearer token"))
			return
		}
		next(w, r)
	}
}

// withBackend answers 503 until the store is open.
func (s *Server) withBackend(next func(http.ResponseWriter, *http.Request, Backend)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := s.currentBackend()
		if b == nil || !s.ready.Load() {
			writeError(w, errorf(CodeUnavailable, "not ready"))
			return
		}
		next(w, r, b)
	}
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request, b Backend) {
	var patch map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxConfigBody))
	if err := dec.Decode(&patch); err != nil {
		writeError(w, errorf(CodeBadRequest, "body: want a JSON object of the fields to change: %v", err))
		return
	}
	// Try the patch on a copy first, so that a bad field is reported as
	// such; UpdateConfig then applies it to the live value atomically.
	probe := b.Config()
	if err := patchConfig(&probe, patch); err != nil {
		writeError(w, errorf(CodeBadRequest, "%v", err))
		return
	}
	err := b.UpdateConfig(func(c store.Config) store.Config {
		patchConfig(&c, patch) // cannot fail: the same patch applied to probe
		return c
	})
	if err != nil {
		code := CodeBadRequest
		if errors.Is(err, store.ErrClosed) {
			code = CodeUnavailable
		}
		writeError(w, errorf(code, "%v", err))
		return
	}
	s.log.Info("configuration changed", "patch", patch, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, configJSON(b.Config()))
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request, b Backend) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), 4*time.Minute)
	defer cancel()
	if err := b.Checkpoint(ctx); err != nil {
		writeError(w, asError(err))
		return
	}
	c := b.Stats().Checkpoints
	s.log.Info("checkpoint written on request", "lsn", c.LastLSN, "duration", time.Since(start), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{
		"status":           "ok",
		"lsn":              c.LastLSN,
		"bytes":            c.LastBytes,
		"pairs":            c.LastPairs,
		"duration_seconds": time.Since(start).Seconds(),
		"version":          apiVersion,
	})
}
