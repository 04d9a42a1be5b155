package store

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/wal"
)

// FuzzTripleOps drives a persistent store with triple writes decoded from
// the input, interleaved with checkpoints, reopens (recovery from the
// snapshot and the WAL after it, folded into the bulk load or replayed),
// audits and an export imported into a fresh store, and compares every
// pattern with a model after each step. Components come from an alphabet
// of 6 CIDs, so keys share values and value sets change representation.
//
// Op codes (first byte mod 8): insert s p o; delete s p o; batch n then n
// items (kind, s, p, o); checkpoint; reopen (shards, inline values,
// merge budget); audit; export and import; check a pattern (s, p, o with
// 0 a wildcard).
func FuzzTripleOps(f *testing.F) {
	const (
		opInsert = iota
		opDelete
		opBatch
		opCheckpoint
		opReopen
		opAudit
		opExport
		opCheck
	)
	f.Add([]byte{opInsert, 1, 2, 3, opInsert, 1, 2, 4, opDelete, 1, 2, 3, opReopen, 1, 1, 0, opCheck, 1, 2, 0})
	f.Add([]byte{opBatch, 4, 0, 1, 1, 1, 0, 1, 1, 2, 0, 1, 1, 3, 1, 1, 1, 1, opCheckpoint, opDelete, 1, 1, 2, opReopen, 0, 0, 1, opCheck, 0, 1, 0})
	f.Add([]byte{opBatch, 3, 0, 2, 3, 4, 1, 2, 3, 4, 0, 2, 3, 4, opCheckpoint, opBatch, 2, 0, 5, 5, 5, 0, 5, 4, 5,
		opReopen, 2, 0, 2, opExport, opAudit, opCheck, 5, 0, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{data: data}
		dir := t.TempDir()
		defer func(old int64) { mergeOpsMax = old }(mergeOpsMax)
		open := func() *Store {
			s, err := Open(dir, fuzzOptions(1<<(in.byte()%3), 1+int(in.byte()%3), 2, wal.MinSegmentSize))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return s
		}
		comp := func() cid.CID { return w(1 + uint64(in.byte()%6)) }
		triple := func() Triple { return Triple{S: comp(), P: comp(), O: comp()} }
		s := open()
		defer func() { s.Close() }()
		m := tripleModel{}
		ctx := context.Background()
		for step := 0; !in.done() && step < 200; step++ {
			var ops []TripleOp
			switch in.byte() % 8 {
			case opInsert:
				ops = []TripleOp{{Triple: triple()}}
			case opDelete:
				ops = []TripleOp{{Delete: true, Triple: triple()}}
			case opBatch:
				n := int(in.byte() % 9)
				for range n {
					ops = append(ops, TripleOp{Delete: in.byte()%3 == 0, Triple: triple()})
				}
			case opCheckpoint:
				if err := s.Checkpoint(ctx); err != nil {
					t.Fatalf("step %d: checkpoint: %v", step, err)
				}
			case opReopen:
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				mergeOpsMax = int64(in.byte() % 4 * 3) // 0: replay everything
				s = open()
			case opAudit:
				if n, err := s.Audit(ctx); n != 0 || err != nil {
					t.Fatalf("step %d: audit of a sound store repaired %d: %v", step, n, err)
				}
			case opExport:
				var buf bytes.Buffer
				if _, err := s.Export(ctx, &buf); err != nil {
					t.Fatal(err)
				}
				imp, err := Open("", Options{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := imp.Import(ctx, &buf); err != nil {
					t.Fatalf("step %d: import: %v", step, err)
				}
				got := slices.Collect(imp.Query(cid.Zero, cid.Zero, cid.Zero))
				imp.Close()
				if want := m.Match(cid.Zero, cid.Zero, cid.Zero); !slices.Equal(got, want) {
					t.Fatalf("step %d: import holds %d triples, want %d", step, len(got), len(want))
				}
			case opCheck:
				var q [3]cid.CID
				for i := range q {
					if c := in.byte() % 7; c > 0 {
						q[i] = w(uint64(c))
					}
				}
				if got, want := slices.Collect(s.Query(q[0], q[1], q[2])), m.Match(q[0], q[1], q[2]); !slices.Equal(got, want) {
					t.Fatalf("step %d: Query(%v) = %d triples, want %d", step, q, len(got), len(want))
				}
			}
			if len(ops) > 0 {
				got, err := s.ApplyTriples(ops)
				if want := m.Apply(ops); err != nil || got != want {
					t.Fatalf("step %d: ApplyTriples = %d, %v; want %d", step, got, err, want)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open()
		if err := s.triples.Check(); err != nil {
			t.Fatal(err)
		}
		checkTriples(t, s, m, 6)
	})
}
