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
}

// result is what Apply hands back to the leader's Node.Apply.
type result struct {
	changed int
	err     error
}

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply applies one committed entry.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in log order. Consecutive pair
// commands that only insert are merged into one Store.InsertBatch (up to
// MaxOps pairs): each stays atomic, inside a larger atomic unit, and one
// merged batch takes the store's shard locks once instead of once per
// entry.
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
		c, err := DecodeCommand(l.Data)
		if err != nil {
			// Every replica decodes the same bytes the same way, but one
			// that cannot read them must not apply what follows them.
			f.stop(fmt.Errorf("entry %d: %w", l.Index, err))
			out[i] = result{err: f.stoppedErr()}
			i++
			continue
		}
		if c.kind == kindPairs && insertsOnly(c.pairs) {
			j, merged := f.mergeInserts(logs, i, c)
			err := f.st.InsertBatch(merged)
			for k := i; k < j; k++ {
				out[k] = f.finish(logs[k], 0, err)
			}
			i = j
			continue
		}
		n, err := f.applyCommand(c)
		out[i] = f.finish(l, n, err)
		i++
	}
	return out
}

// mergeInserts gathers the insert-only pair commands from logs[i] on
// (c is logs[i] decoded) into one batch and returns the index after the
// last one taken. An entry that does not decode is left for the main loop.
func (f *fsm) mergeInserts(logs []*raft.Log, i int, c Command) (int, []store.Pair) {
	pairs := appendInserts(nil, c.pairs)
	j := i + 1
	for ; j < len(logs) && logs[j].Type == raft.LogCommand; j++ {
		next, err := DecodeCommand(logs[j].Data)
		if err != nil || next.kind != kindPairs || !insertsOnly(next.pairs) || len(pairs)+len(next.pairs) > MaxOps {
			break
		}
		pairs = appendInserts(pairs, next.pairs)
	}
	return j, pairs
}

func insertsOnly(ops []pairOp) bool {
	for _, op := range ops {
		if op.code != codeInsert {
			return false
		}
	}
	return true
}

func appendInserts(dst []store.Pair, ops []pairOp) []store.Pair {
	for _, op := range ops {
		dst = append(dst, store.Pair{Key: op.key, Value: op.val})
	}
	return dst
}

// applyCommand applies a decoded command other than an insert-only pair
// batch.
func (f *fsm) applyCommand(c Command) (int, error) {
	switch c.kind {
	case kindPairs:
		// A mixed batch: in order, one by one, until the store offers
		// an atomic mixed batch. The log entry is still all or nothing:
		// after a crash it is replayed whole.
		for _, op := range c.pairs {
			var err error
			switch op.code {
			case codeInsert:
				err = f.st.Insert(op.key, op.val)
			case codeDelete:
				err = f.st.Delete(op.key, op.val)
			default:
				err = f.st.DeleteKey(op.key)
			}
			if err != nil {
				return 0, err
			}
		}
		return 0, nil
	case kindMeta:
		f.metaMu.Lock()
		if c.meta.Meta == nil {
			delete(f.meta, c.meta.ID)
		} else {
			f.meta[c.meta.ID] = maps.Clone(c.meta.Meta)
		}
		f.metaMu.Unlock()
		return 0, nil
	default: // kindTriples: the store has no triples yet
		return 0, fmt.Errorf("%w: triple commands need a store with triples", ErrUnsupported)
	}
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
	return errors.Is(err, store.ErrInvalidCID) || errors.Is(err, store.ErrBatchTooLarge)
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
