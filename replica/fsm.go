package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/cidstore/cidstore/store"
)

// fsm is the raft state machine: the store, plus the metadata the nodes
// publish (their client addresses). raft calls Apply, ApplyBatch, Snapshot
// and Restore from one goroutine; FSMSnapshot.Persist runs beside Apply.
type fsm struct {
	st     *store.Store
	log    *slog.Logger
	ctx    context.Context // cancelled when the node closes
	onStop func(error)     // told once when applying stops for good

	applied  atomic.Uint64 // index of the last entry applied to the store
	restores atomic.Int64  // snapshots restored since the node started

	metaMu sync.RWMutex
	meta   map[string]map[string]string // node ID -> metadata

	stopped atomic.Pointer[error] // why applying stopped; nil while it goes on

	// Buffers of ApplyBatch, reused from one call to the next (raft calls
	// it from one goroutine).
	pairs []store.PairOp
	ends  []int // ends[k]: where the k-th gathered entry's operations end in pairs
}

// result is what Apply hands back to the leader's Node.Apply.
type result struct {
	changed int
	ops     []bool // a pair command's per-operation outcome
	err     error
}

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply applies one committed entry.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in log order. Consecutive pair
// commands are gathered into one Store.ApplyPairs (up to MaxOps
// operations): the store applies a batch's operations in order, so each
// command stays atomic, inside a larger atomic unit, and one gathered
// batch takes the store's shard locks once instead of once per entry. A
// triple command is one Store.ApplyTriples, whose count of changed
// triples is the entry's result.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i := 0; i < len(logs); {
		l := logs[i]
		if err := f.stoppedErr(); err != nil {
			out[i] = result{err: err}
			i++
			continue
		}
		if l.Type != raft.LogCommand {
			f.applied.Store(l.Index) // a configuration change: nothing for the store
			i++
			continue
		}
		c, pairs, err := decodeCommand(l.Data, f.pairs[:0])
		f.pairs = pairs
		if err != nil {
			// Every replica decodes the same bytes the same way, but one
			// that cannot read them must not apply what follows them.
			f.stop(fmt.Errorf("entry %d: %w", l.Index, err))
			out[i] = result{err: f.stoppedErr()}
			i++
			continue
		}
		if c.kind == kindPairs {
			f.ends = append(f.ends[:0], len(f.pairs))
			j := f.gatherPairs(logs, i+1)
			changed := make([]bool, len(f.pairs)) // handed to the leader's callers: not reused
			_, err := f.st.ApplyPairs(f.pairs, changed)
			start := 0
			for k := i; k < j; k++ {
				end := f.ends[k-i]
				ops := changed[start:end:end]
				r := f.finish(logs[k], countTrue(ops), err)
				if err == nil {
					r.ops = ops
				}
				out[k] = r
				start = end
			}
			f.releasePairs()
			i = j
			continue
		}
		n, err := f.applyCommand(c)
		out[i] = f.finish(l, n, err)
		i++
	}
	return out
}

// gatherPairs appends to f.pairs the operations of the pair commands from
// logs[j] on, while they fit in one batch, and returns the index after
// the last one taken. An entry that is not a pair command, or does not
// decode, is left for the main loop.
func (f *fsm) gatherPairs(logs []*raft.Log, j int) int {
	for ; j < len(logs) && logs[j].Type == raft.LogCommand; j++ {
		n := len(f.pairs)
		c, pairs, err := decodeCommand(logs[j].Data, f.pairs)
		if err != nil || c.kind != kindPairs || len(pairs) > MaxOps {
			f.pairs = pairs[:n]
			break
		}
		f.pairs = pairs
		f.ends = append(f.ends, len(pairs))
	}
	return j
}

// countTrue returns how many of flags are set.
func countTrue(flags []bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// maxKeptOps bounds the operations whose buffers the state machine keeps
// between batches: one huge batch must not pin its memory for good.
const maxKeptOps = 1 << 16

func (f *fsm) releasePairs() {
	if cap(f.pairs) > maxKeptOps {
		f.pairs = nil
	}
}

// applyCommand applies a decoded command other than a pair command.
func (f *fsm) applyCommand(c Command) (int, error) {
	switch c.kind {
	case kindTriples:
		return f.st.ApplyTriples(c.triples)
	case kindMeta:
		f.metaMu.Lock()
		if c.meta.Meta == nil {
			delete(f.meta, c.meta.ID)
		} else {
			f.meta[c.meta.ID] = maps.Clone(c.meta.Meta)
		}
		f.metaMu.Unlock()
		return 0, nil
	}
	return 0, fmt.Errorf("%w: command kind %d", ErrUnsupported, c.kind)
}

// finish records entry l as applied and turns a store error into its
// result. Errors every replica meets alike (a command the store refuses
// as invalid) are answers; any other error means this replica's store no
// longer follows the log, and applying stops.
func (f *fsm) finish(l *raft.Log, changed int, err error) result {
	if err != nil && !deterministic(err) {
		f.stop(fmt.Errorf("entry %d: %w", l.Index, err))
		return result{err: f.stoppedErr()}
	}
	f.applied.Store(l.Index)
	return result{changed: changed, err: err}
}

func deterministic(err error) bool {
	return errors.Is(err, store.ErrInvalidCID) || errors.Is(err, store.ErrInvalidOp) || errors.Is(err, store.ErrBatchTooLarge)
}

// stop makes applying stop for good, once.
func (f *fsm) stop(cause error) {
	err := fmt.Errorf("%w: %w", ErrStopped, cause)
	if f.stopped.CompareAndSwap(nil, &err) {
		f.log.Error("replica: the state machine stopped; this node no longer follows the log", "err", cause)
		if f.onStop != nil {
			f.onStop(err)
		}
	}
}

func (f *fsm) stoppedErr() error {
	if p := f.stopped.Load(); p != nil {
		return *p
	}
	return nil
}

// Snapshot takes the store's O(1) cut now, between two applies, so the
// snapshot holds exactly the state at raft's snapshot index; Persist
// writes it out later while applies go on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.stoppedErr(); err != nil {
		return nil, err
	}
	v, err := f.st.View()
	if err != nil {
		return nil, err
	}
	f.metaMu.RLock()
	meta := maps.Clone(f.meta)
	f.metaMu.RUnlock()
	return &fsmSnapshot{ctx: f.ctx, view: v, hdr: snapshotHeader{Applied: f.applied.Load(), Meta: meta}}, nil
}

// Restore replaces the whole state with a snapshot: the store's contents
// through Store.Restore (crash-safe and atomic for a persistent store),
// then the metadata.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<20)
	hdr, err := readSnapshotHeader(br)
	if err != nil {
		return err
	}
	if _, err := f.st.Restore(f.ctx, br); err != nil {
		return fmt.Errorf("replica: restore the store: %w", err)
	}
	f.metaMu.Lock()
	f.meta = hdr.Meta
	if f.meta == nil {
		f.meta = map[string]map[string]string{}
	}
	f.metaMu.Unlock()
	f.applied.Store(hdr.Applied)
	f.restores.Add(1)
	return nil
}

// metaOf returns a copy of node id's metadata.
func (f *fsm) metaOf(id string) map[string]string {
	f.metaMu.RLock()
	defer f.metaMu.RUnlock()
	return maps.Clone(f.meta[id])
}

// fsmSnapshot is a cut of the store waiting to be persisted.
type fsmSnapshot struct {
	ctx  context.Context
	view *store.View
	hdr  snapshotHeader
}

// Persist writes the snapshot (header, then the store's snapshot stream)
// to the sink. Closing the node cancels it.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	bw := bufio.NewWriterSize(sink, 1<<20)
	err := writeSnapshotHeader(bw, s.hdr)
	if err == nil {
		_, err = s.view.Export(s.ctx, bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return errors.Join(err, sink.Cancel())
	}
	return sink.Close()
}

// Release drops the cut, so writers stop copying tree nodes for it.
func (s *fsmSnapshot) Release() { s.view = nil }
