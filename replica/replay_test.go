package replica

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// randomLog returns n raft entries of random pair commands over a small
// key and value space, so that later commands often undo earlier ones.
func randomLog(rng *rand.Rand, n int) []*raft.Log {
	k := func() cid.CID { return key(1 + rng.Uint64N(8)) }
	v := func() cid.CID { return val(1 + rng.Uint64N(6)) }
	logs := make([]*raft.Log, n)
	for i := range logs {
		var c Command
		t := func() store.Triple { return store.Triple{S: k(), P: v(), O: k()} }
		switch rng.IntN(13) {
		case 0, 1, 2, 3:
			c = Insert(k(), v())
		case 4, 5:
			c = Delete(k(), v())
		case 6:
			c = DeleteKey(k())
		case 7, 8:
			pairs := make([]store.Pair, 1+rng.IntN(5))
			for j := range pairs {
				pairs[j] = store.Pair{Key: k(), Value: v()}
			}
			c = InsertBatch(pairs)
		case 9: // a mixed batch
			c = ApplyBatch([]store.PairOp{{Kind: store.OpInsert, Key: k(), Value: v()}, {Kind: store.OpDelete, Key: k(), Value: v()}, {Kind: store.OpDeleteKey, Key: k()}})
		case 10:
			c = InsertTriples([]store.Triple{t(), t()})
		case 11:
			c = DeleteTriples([]store.Triple{t()})
		default:
			c = ApplyTriples([]store.TripleOp{{Triple: t()}, {Delete: true, Triple: t()}, {Triple: t()}})
		}
		data, err := c.MarshalBinary()
		if err != nil {
			panic(err)
		}
		logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data}
	}
	return logs
}

func newFSM(t *testing.T) *fsm {
	st, err := store.Open("", store.Options{InMemory: true, Shards: 4})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	return &fsm{st: st, log: slog.New(slog.DiscardHandler), ctx: context.Background(), meta: map[string]map[string]string{}}
}

// applyIn applies logs to f in batches of random size, as raft hands them
// over.
func applyIn(t *testing.T, f *fsm, rng *rand.Rand, logs []*raft.Log) {
	for len(logs) > 0 {
		n := min(len(logs), 1+rng.IntN(8))
		for i, r := range f.ApplyBatch(logs[:n]) {
			if res := r.(result); res.err != nil {
				t.Fatalf("entry %d: %v", logs[i].Index, res.err)
			}
		}
		logs = logs[n:]
	}
}

// TestReapplyConverges checks what restart recovery relies on: a store
// that applied entries 1..a, given entries s+1..n again (s <= a), as raft
// does when it replays its log after the last snapshot on top of a store
// that already went further, ends up equal to a store that applied 1..n
// once. Every command is an idempotent assignment, so this holds for any
// s <= a.
func TestReapplyConverges(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		logs := randomLog(rng, 300)
		want := newFSM(t)
		applyIn(t, want, rng, logs)

		a := rng.IntN(len(logs) + 1)
		s := rng.IntN(a + 1)
		got := newFSM(t)
		applyIn(t, got, rng, logs[:a])
		applyIn(t, got, rng, logs[s:])
		if !contents(got.st).equal(contents(want.st)) {
			t.Fatalf("seed %d: applying 1..%d then %d..%d differs from applying 1..%d once", seed, a, s+1, len(logs), len(logs))
		}
		if got.applied.Load() != uint64(len(logs)) {
			t.Fatalf("seed %d: applied index %d, want %d", seed, got.applied.Load(), len(logs))
		}
	}
}

// A snapshot holds exactly the state at the index it was cut at, even
// when applies go on before it is persisted; restoring it into a store
// holding anything, then applying the entries after it, gives the state
// of applying everything once.
func TestSnapshotRestoreThenReplay(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		logs := randomLog(rng, 200)
		want := newFSM(t)
		applyIn(t, want, rng, logs)

		src := newFSM(t)
		src.meta["n1"] = map[string]string{"client": "a"}
		cut := rng.IntN(len(logs) + 1)
		applyIn(t, src, rng, logs[:cut])
		snap, err := src.Snapshot()
		must(t, err)
		applyIn(t, src, rng, logs[cut:]) // goes on before Persist
		sink := &memSink{}
		must(t, snap.Persist(sink))
		snap.Release()

		dst := newFSM(t)
		applyIn(t, dst, rng, logs[:rng.IntN(len(logs)+1)]) // any state at all
		must(t, dst.Restore(sink.reader()))
		if dst.applied.Load() != uint64(cut) || dst.metaOf("n1")["client"] != "a" {
			t.Fatalf("seed %d: restored applied index %d and metadata %v, want %d and the source's",
				seed, dst.applied.Load(), dst.metaOf("n1"), cut)
		}
		applyIn(t, dst, rng, logs[cut:])
		if !contents(dst.st).equal(contents(want.st)) {
			t.Fatalf("seed %d: restore at %d and replay differ from applying everything", seed, cut)
		}
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string     { return "mem" }
func (s *memSink) Close() error   { s.closed = true; return nil }
func (s *memSink) Cancel() error  { s.cancelled = true; return nil }
func (s *memSink) reader() *nopRC { return &nopRC{bytes.NewReader(s.Bytes())} }

type nopRC struct{ *bytes.Reader }

func (nopRC) Close() error { return nil }
