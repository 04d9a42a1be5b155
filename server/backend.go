package server

import (
	"context"
	"io"
	"iter"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Triple is one (subject, predicate, object) statement.
type Triple = store.Triple

// The store is a Backend.
var _ Backend = (*store.Store)(nil)

// Backend is what the commands need from a store. *store.Store provides
// it; replication provides one that sends mutations through its log
// before they reach a store. Every method must be safe for concurrent use.
type Backend interface {
	// InsertTriples adds triples as one atomic, durable batch and returns
	// how many were new.
	InsertTriples(ts []Triple) (added int, err error)
	// DeleteTriples removes triples as one atomic, durable batch and
	// returns how many were present.
	DeleteTriples(ts []Triple) (removed int, err error)
	// Query yields the triples matching a pattern; cid.Zero is a wildcard.
	Query(s, p, o cid.CID) iter.Seq[Triple]
	// TripleCount returns the number of triples.
	TripleCount() int
	// CountTriples returns the number of triples matching a pattern.
	CountTriples(s, p, o cid.CID) int

	// ApplyPairs applies pair operations as one atomic, durable batch,
	// in order, and returns how many changed the store; when changed is
	// not nil (len(ops) long) it says which did.
	ApplyPairs(ops []store.PairOp, changed []bool) (n int, err error)
	// AppendValues appends the values of k, ascending, to dst.
	AppendValues(dst []cid.CID, k cid.CID) []cid.CID
	// Contains reports whether v is a value of k.
	Contains(k, v cid.CID) bool
	// Count returns the number of values of k.
	Count(k cid.CID) int
	// Range yields the keys from <= k < to, ascending, with their values,
	// from a point-in-time view; a zero bound is open.
	Range(from, to cid.CID) iter.Seq2[cid.CID, []cid.CID]

	// Stats returns the store's counters.
	Stats() store.Stats
	// WritePrometheus writes the store's metrics in the Prometheus text
	// format.
	WritePrometheus(w io.Writer) error
	// Checkpoint writes a snapshot now.
	Checkpoint(ctx context.Context) error
	// Config returns the live configuration.
	Config() store.Config
	// UpdateConfig validates and swaps the live configuration atomically.
	UpdateConfig(fn func(store.Config) store.Config) error
}

// ReadBarrier is an optional interface of a Backend whose reads must first
// be allowed: a replicated backend serving linearizable reads confirms
// that it is still the leader, and refuses (with a *Error of
// CodeRedirect, say) when it is not. The Executor calls BeforeRead before
// every command that reads the store's contents (everything but ping,
// metrics and the mutations) and fails the command with its error.
// *store.Store needs no barrier and does not implement it.
type ReadBarrier interface {
	BeforeRead(ctx context.Context) error
}
