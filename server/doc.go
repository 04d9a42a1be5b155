// Package server serves a CIDStore over the network: the ZeroMQ/msgpack
// protocol of the Python CIDStore service, so that its clients work
// unchanged, the Redis protocol (RESP), so that redis-cli,
// redis-benchmark and Redis client libraries work, and an HTTP control
// plane.
//
// # Layers
//
// One command layer and thin protocol adapters:
//
//   - command.go, exec.go, errors.go: typed commands (Command, Op),
//     their execution against a Backend (Executor) and their failures
//     (Error, with the Python service's codes 400, 413, 500 and 503).
//     A command's meaning and its errors are defined here once.
//   - backend.go: Backend, the small interface the commands need;
//     *store.Store provides it, and replication can put a log in front
//     of a store behind the same interface.
//   - msgpack.go, msgpack_reply.go, cidtext.go: the msgpack request and
//     reply format and every CID form the Python clients send.
//   - zmq*.go: the ZeroMQ endpoints. The REQ/REP endpoint (default port
//     5555) and the ROUTER/DEALER endpoint (5558) answer every command,
//     one reply per request, each client on its own goroutine; the
//     PUSH/PULL endpoint (5557) applies fire-and-forget mutations; the
//     PUB endpoint (5559) publishes heartbeats and a notification per
//     applied mutation. The ZMTP protocol itself comes from zmq4
//     (pure Go); zmqwire.go bounds every message before zmq4 allocates it.
//   - resp*.go: the RESP endpoint (resp.go: connections and pipelines;
//     respread.go: the request reader; respcmd.go: the data commands and
//     MULTI; respscan.go: SCAN cursors; respinfo.go: the server and
//     connection commands; respreply.go: replies and error forms). Replies
//     are encoded with tidwall/redcon's Append functions; requests are read
//     by a reader of its own, because redcon's Reader buffers a request of
//     any declared size before it can be judged (the endpoint must skip an
//     oversized one without buffering it and keep the connection) and
//     copies every request, where this one parses in place.
//   - http.go, config.go, metrics.go: health, readiness, Prometheus
//     metrics, the live configuration and checkpoints over HTTP.
//
// Every listener binds to 127.0.0.1 by default (DefaultConfig); another
// address must be asked for. Messages are bounded (Config.MaxMessage,
// default 64 MiB; Limits for batches and query results), handshakes and
// writes have deadlines, and malformed input of any kind gets an error
// reply: nothing a client sends can stop the server.
//
// # Adding a protocol or a replicated store
//
// Another protocol is another adapter, as RESP is: it decodes its requests
// into Commands, runs them with the server's Executor and maps an Error's
// Code onto its own error form; a command it needs that no Op expresses
// yet is added to command.go and exec.go once, for every protocol.
// Replication puts its own Backend in front of the store (package
// cluster): mutations go through its log before they reach the store, and
// its BeforeRead (ReadBarrier) confirms leadership before a linearizable
// read. A replica that is not the leader fails a command with an *Error of
// CodeRedirect whose Leader holds the leader's addresses by endpoint name;
// each adapter renders it in its own form (the msgpack reply's
// "leader" field, the HTTP error's "leader"), so a client knows where to
// retry. Route adds the replicated server's HTTP endpoints.
//
// # Lifecycle
//
// New, then ListenHTTP (health checks answer, /ready says 503 while the
// store recovers), then Start with the opened store. Shutdown stops
// accepting connections and reading requests, lets requests in progress
// finish and reply, and closes the connections; the caller then closes
// the store, which makes every acknowledged write durable.
package server
