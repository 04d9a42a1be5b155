package server

import (
	"strings"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Op names a command. Every protocol adapter decodes its requests into
// the same commands, so a command's meaning and its errors are defined
// once, here and in Executor.
type Op uint8

// The commands.
const (
	OpPing         Op = iota + 1 // answer "ok"; touches nothing
	OpInsert                     // insert one triple or one pair
	OpDelete                     // delete one triple, one pair or one key
	OpBatchInsert                // insert triples or pairs as one atomic batch
	OpBatchDelete                // delete triples, pairs or keys as one atomic batch
	OpQuery                      // triples matching a pattern with wildcards
	OpLookup                     // the values of one key
	OpMetrics                    // counters of the store and the server
	OpApply                      // inserts and deletes of pairs as one atomic batch, in order
	OpContains                   // whether each of some values is a value of one key
	OpCount                      // the number of values of each of some keys
	OpScan                       // keys in ascending order from a key on
	OpCountTriples               // the number of triples matching a pattern
	numOps
)

var opNames = [numOps]string{
	OpPing:        "ping",
	OpInsert:      "insert",
	OpDelete:      "delete",
	OpBatchInsert: "batch_insert",
	OpBatchDelete: "batch_delete",
	OpQuery:       "query",
	OpLookup:      "lookup",
	OpMetrics:     "metrics",
	// Commands the RESP adapter sends; the msgpack protocol has no
	// request form for them.
	OpApply:        "apply",
	OpContains:     "contains",
	OpCount:        "count",
	OpScan:         "scan",
	OpCountTriples: "count_triples",
}

// String returns the command's wire name, such as "batch_insert".
func (o Op) String() string {
	if o == 0 || o >= numOps {
		return "unknown"
	}
	return opNames[o]
}

// Mutates reports whether the command changes the store.
func (o Op) Mutates() bool {
	switch o {
	case OpInsert, OpDelete, OpBatchInsert, OpBatchDelete, OpApply:
		return true
	}
	return false
}

// LookupOp returns the command named name. Names are matched without
// regard to case, so the Python service's upper-case op codes (INSERT,
// DELETE, BATCH_INSERT, BATCH_DELETE, LOOKUP, METRICS) are aliases of the
// lower-case commands.
func LookupOp(name string) (Op, bool) {
	for o := OpPing; o < numOps; o++ {
		if strings.EqualFold(name, opNames[o]) {
			return o, true
		}
	}
	return 0, false
}

// Command is one decoded request. Which fields are used depends on Op:
//
//   - OpInsert, OpBatchInsert: Triples, or Pairs of kind store.OpInsert
//     (never both); OpInsert carries exactly one item.
//   - OpDelete, OpBatchDelete: Triples, or Pairs of kind store.OpDelete or
//     store.OpDeleteKey; OpDelete carries exactly one item.
//   - OpApply: Pairs of any kind, applied in order as one atomic batch.
//   - OpQuery: Pattern, where a zero component is a wildcard, and Limit
//     (0: the server's default).
//   - OpCountTriples: Pattern, as for OpQuery.
//   - OpLookup: Key.
//   - OpContains: Key and the Values to look for.
//   - OpCount: the keys, in Values.
//   - OpScan: Key, the first key to return (or the zero CID: from the
//     smallest key), and Limit (0: the server's default).
//
// A Command is reused between requests: Reset keeps the slices' memory.
type Command struct {
	Op      Op
	Triples []Triple
	Pairs   []store.PairOp
	Pattern Triple
	Limit   int
	Key     cid.CID
	Values  []cid.CID
}

// Reset clears c for the next request, keeping its slices' capacity.
func (c *Command) Reset() {
	*c = Command{Triples: c.Triples[:0], Pairs: c.Pairs[:0], Values: c.Values[:0]}
}

// Items returns how many triples or pairs a mutation carries.
func (c *Command) Items() int { return len(c.Triples) + len(c.Pairs) }

// Result is what a command returns. Like Command it is reused.
type Result struct {
	Op Op
	// Changed counts what a mutation changed: the triples a triple
	// mutation added or removed, the operations of OpApply that changed
	// the store. It is -1 for the other pair mutations, whose msgpack
	// replies never carried a count; Changes has their effect.
	Changed int
	// Changes says, for OpApply, whether each of Command.Pairs changed
	// the store, judged in order.
	Changes   []bool
	Triples   []Triple  // OpQuery: the matches, at most the limit
	Truncated bool      // OpQuery, OpScan: more matched than were returned
	Values    []cid.CID // OpLookup: the key's values, ascending; OpScan: the keys
	Next      cid.CID   // OpScan, when Truncated: the key to continue from
	Found     []bool    // OpContains: for each value, whether the key has it
	Counts    []int     // OpCount: the number of values of each key
	Count     int       // OpCountTriples
	Metrics   []Metric  // OpMetrics
}

// Reset clears r for the next command, keeping its slices' capacity.
func (r *Result) Reset() {
	*r = Result{Changes: r.Changes[:0], Triples: r.Triples[:0], Values: r.Values[:0],
		Found: r.Found[:0], Counts: r.Counts[:0], Metrics: r.Metrics[:0]}
}

// Metric is one named counter or gauge of OpMetrics.
type Metric struct {
	Name  string
	Value int64
}
