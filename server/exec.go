package server

import (
	"context"
	"slices"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Limits bound what one command may ask of the store.
type Limits struct {
	// MaxBatch is the most pairs or triples one mutation may carry. 0
	// means store.MaxBatch, which is also the upper bound; a triple batch
	// is further bounded by store.MaxTripleBatch.
	MaxBatch int
	// QueryLimit is how many triples a query returns when it names no
	// limit. 0 means 1000.
	QueryLimit int
	// MaxQueryLimit is the most triples a query may ask for; a larger
	// limit is lowered to it (and the reply says "truncated" when more
	// matched). 0 means 100000.
	MaxQueryLimit int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBatch <= 0 || l.MaxBatch > store.MaxBatch {
		l.MaxBatch = store.MaxBatch
	}
	if l.QueryLimit <= 0 {
		l.QueryLimit = 1000
	}
	if l.MaxQueryLimit <= 0 {
		l.MaxQueryLimit = 100_000
	}
	l.QueryLimit = min(l.QueryLimit, l.MaxQueryLimit)
	return l
}

// batchLimit is the most items a batch of triples (or pairs) may hold.
func (l Limits) batchLimit(triples bool) int {
	if triples {
		return min(l.MaxBatch, store.MaxTripleBatch)
	}
	return l.MaxBatch
}

// Executor runs commands against a Backend. It is the one place where a
// command's meaning is defined; protocol adapters only decode requests
// into Commands and encode Results. It is safe for concurrent use.
type Executor struct {
	b       Backend
	barrier ReadBarrier // b's, or nil
	lim     Limits

	// OnMutation, if set, is called after every mutation that succeeded,
	// with its command and result (both valid only during the call).
	OnMutation func(*Command, *Result)
	// Counters, if set, adds the server's own counters to OpMetrics.
	Counters func(add func(name string, v int64))
}

// NewExecutor returns an Executor over b.
func NewExecutor(b Backend, lim Limits) *Executor {
	e := &Executor{b: b, lim: lim.withDefaults()}
	e.barrier, _ = b.(ReadBarrier)
	return e
}

// Backend returns the backend the executor runs commands against.
func (e *Executor) Backend() Backend { return e.b }

// Execute runs c and fills r. A failure is an *Error whose Code says
// whose fault it was.
func (e *Executor) Execute(c *Command, r *Result) error {
	r.Reset()
	r.Op = c.Op
	if e.barrier != nil && !c.Op.Mutates() && c.Op != OpPing && c.Op != OpMetrics {
		if err := e.barrier.BeforeRead(context.Background()); err != nil {
			return asError(err)
		}
	}
	var err error
	switch c.Op {
	case OpPing:
	case OpInsert, OpDelete, OpBatchInsert, OpBatchDelete, OpApply:
		err = e.mutate(c, r)
	case OpQuery:
		err = e.query(c, r)
	case OpCountTriples:
		p := c.Pattern
		r.Count = e.b.CountTriples(p.S, p.P, p.O)
	case OpLookup:
		if c.Key.IsZero() {
			return errorf(CodeBadRequest, "lookup: the zero CID is not a key")
		}
		r.Values = e.b.AppendValues(r.Values, c.Key)
	case OpContains:
		if c.Key.IsZero() {
			return errorf(CodeBadRequest, "contains: the zero CID is not a key")
		}
		for _, v := range c.Values {
			r.Found = append(r.Found, e.b.Contains(c.Key, v))
		}
	case OpCount:
		for _, k := range c.Values {
			r.Counts = append(r.Counts, e.b.Count(k))
		}
	case OpScan:
		err = e.scan(c, r)
	case OpMetrics:
		e.metrics(r)
	default:
		return errorf(CodeBadRequest, "unknown command %d", c.Op)
	}
	if err != nil {
		return asError(err)
	}
	return nil
}

func (e *Executor) mutate(c *Command, r *Result) error {
	switch n := c.Items(); {
	case len(c.Triples) > 0 && len(c.Pairs) > 0:
		return errorf(CodeBadRequest, "%s: triples and pairs cannot share one batch", c.Op)
	case (c.Op == OpInsert || c.Op == OpDelete) && n != 1:
		return errorf(CodeBadRequest, "%s: want one triple or pair, got %d", c.Op, n)
	case n > e.lim.batchLimit(len(c.Triples) > 0):
		return errorf(CodeTooLarge, "%s: %d items, at most %d", c.Op, n, e.lim.batchLimit(len(c.Triples) > 0))
	}
	var err error
	insert := c.Op == OpInsert || c.Op == OpBatchInsert
	switch {
	case len(c.Pairs) > 0:
		if err := checkPairs(c.Op, c.Pairs); err != nil {
			return err
		}
		if c.Op == OpApply {
			r.Changes = slices.Grow(r.Changes[:0], len(c.Pairs))[:len(c.Pairs)]
			r.Changed, err = e.b.ApplyPairs(c.Pairs, r.Changes)
		} else {
			// The other pair mutations answer without counts, so they do
			// not ask a Backend that may not know them (a replicated one).
			_, err = e.b.ApplyPairs(c.Pairs, nil)
			r.Changed = -1
		}
	case c.Op == OpApply:
		if len(c.Triples) > 0 {
			return errorf(CodeBadRequest, "apply: takes pairs, not triples")
		}
	case insert:
		r.Changed, err = e.b.InsertTriples(c.Triples)
	default:
		r.Changed, err = e.b.DeleteTriples(c.Triples)
	}
	if err != nil {
		return err
	}
	if e.OnMutation != nil {
		e.OnMutation(c, r)
	}
	return nil
}

// checkPairs validates the pairs of a mutation before the store sees
// them: their kinds suit op, and no key or value is the zero CID. An
// adapter that applies several requests as one batch checks each request
// on its own first, so that a bad one fails alone.
func checkPairs(op Op, pairs []store.PairOp) error {
	insert := op == OpInsert || op == OpBatchInsert
	for i, p := range pairs {
		switch {
		case p.Kind != store.OpInsert && p.Kind != store.OpDelete && p.Kind != store.OpDeleteKey:
			return errorf(CodeBadRequest, "%s: pair %d: unknown kind %d", op, i, p.Kind)
		case op != OpApply && (p.Kind == store.OpInsert) != insert:
			return errorf(CodeBadRequest, "%s: pair %d is a %s", op, i, p.Kind)
		case p.Key.IsZero():
			return errorf(CodeBadRequest, "%s: pair %d: the zero CID is not a key", op, i)
		case p.Kind != store.OpDeleteKey && p.Value.IsZero():
			return errorf(CodeBadRequest, "%s: pair %d: the zero CID is not a value", op, i)
		}
	}
	return nil
}

// limit returns how many results c may have: its Limit, the default when
// it names none, lowered to the most allowed.
func (e *Executor) limit(c *Command) (int, error) {
	switch l := c.Limit; {
	case l < 0:
		return 0, errorf(CodeBadRequest, "%s: negative limit %d", c.Op, l)
	case l == 0:
		return e.lim.QueryLimit, nil
	default:
		return min(l, e.lim.MaxQueryLimit), nil
	}
}

func (e *Executor) query(c *Command, r *Result) error {
	limit, err := e.limit(c)
	if err != nil {
		return err
	}
	p := c.Pattern
	for t := range e.b.Query(p.S, p.P, p.O) {
		if len(r.Triples) == limit {
			r.Truncated = true
			break
		}
		r.Triples = append(r.Triples, t)
	}
	return nil
}

func (e *Executor) scan(c *Command, r *Result) error {
	limit, err := e.limit(c)
	if err != nil {
		return err
	}
	for k := range e.b.Range(c.Key, cid.Zero) {
		if len(r.Values) == limit {
			r.Truncated, r.Next = true, k
			break
		}
		r.Values = append(r.Values, k)
	}
	return nil
}

// metrics fills r.Metrics with the store's counters and then the
// server's.
func (e *Executor) metrics(r *Result) {
	add := func(name string, v int64) { r.Metrics = append(r.Metrics, Metric{name, v}) }
	st := e.b.Stats()
	b2i := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	add("keys", int64(st.Keys))
	add("pairs", int64(st.Pairs))
	add("triples", int64(e.b.TripleCount()))
	add("shards", int64(len(st.Shards)))
	add("inserts", st.Ops.Inserts)
	add("deletes", st.Ops.Deletes)
	add("delete_keys", st.Ops.DeleteKeys)
	add("batches", st.Ops.Batches)
	add("persistent", b2i(st.Persistent))
	add("read_only", b2i(st.ReadOnly != ""))
	add("wal_appends", int64(st.WAL.Appends))
	add("wal_bytes", int64(st.WAL.AppendedBytes))
	add("wal_fsyncs", int64(st.WAL.Fsyncs))
	add("checkpoints", st.Checkpoints.Count)
	if e.Counters != nil {
		e.Counters(add)
	}
}
