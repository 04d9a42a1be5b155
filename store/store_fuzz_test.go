package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/wal"
)

// checkKey compares everything the point reads say about k with the model.
func checkKey(t *testing.T, s *Store, m model, k, v cid.CID, step int) {
	t.Helper()
	want := m.values(k)
	if got := s.Get(k); !slices.Equal(got, want) {
		t.Fatalf("step %d: Get(%v) = %v, want %v", step, k.EString(), got, want)
	}
	if got := s.AppendValues([]cid.CID{w(777)}, k); len(got) != 1+len(want) || !slices.Equal(got[1:], want) {
		t.Fatalf("step %d: AppendValues(%v) = %v, want %v after the prefix", step, k.EString(), got, want)
	}
	if got := s.Count(k); got != len(want) {
		t.Fatalf("step %d: Count(%v) = %d, want %d", step, k.EString(), got, len(want))
	}
	if got := s.Contains(k, v); got != m[k][v] {
		t.Fatalf("step %d: Contains(%v, %v) = %v, want %v", step, k.EString(), v.EString(), got, m[k][v])
	}
}

// checkRange compares Range(from, to) with the model.
func checkRange(t *testing.T, s *Store, m model, from, to cid.CID, step int) {
	t.Helper()
	var want []cid.CID
	for k := range m {
		if (from.IsZero() || cid.Compare(k, from) >= 0) && (to.IsZero() || cid.Compare(k, to) < 0) {
			want = append(want, k)
		}
	}
	slices.SortFunc(want, cid.Compare)
	var got []cid.CID
	for k, vs := range s.Range(from, to) {
		if !slices.Equal(vs, m.values(k)) {
			t.Fatalf("step %d: Range: %v = %v, want %v", step, k.EString(), vs, m.values(k))
		}
		got = append(got, k)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("step %d: Range(%v, %v) keys %v, want %v", step, from.EString(), to.EString(), got, want)
	}
}

// Operation codes of FuzzStoreOps, one input byte each (mod opCount).
const (
	fzInsert = iota // key, value
	fzInsert2
	fzInsert3
	fzDelete // key, value
	fzDelete2
	fzDeleteKey    // key
	fzBatch        // count, zero marker, count*(key, value)
	fzBadInsert    // which
	fzCheckpoint   //
	fzReopen       // shards, inline, snapshots kept
	fzCompact      //
	fzAudit        //
	fzGC           //
	fzRange        // from, to
	fzCheck        // key, value
	fzDeleteAbsent // key, value
	opCount
)

// FuzzStoreOps decodes its input into a sequence of operations on a
// persistent store (Insert, Delete, DeleteKey, InsertBatch with and without
// a zero CID, Insert of a zero CID, Checkpoint, Close and reopen with other
// shard counts and inline thresholds, the compact, audit and gc workers,
// Range and point reads) over 6 keys and 8 values with an inline threshold
// of 1 to 3, so value sets grow, shrink and change representation. After
// every step the touched key reads as in a map-of-sets model; every 8
// steps, after every reopen and at the end All and Range match the model.
func FuzzStoreOps(f *testing.F) {
	f.Add([]byte{fzInsert, 1, 1, fzInsert, 1, 2, fzInsert, 1, 3, fzDelete, 1, 2, fzReopen, 1, 2, 0, fzCheck, 1, 1})
	f.Add([]byte{fzBatch, 4, 1, 1, 1, 1, 2, 1, 3, 1, 4, fzCheckpoint, fzDeleteKey, 1, fzReopen, 0, 0, 1, fzGC})
	f.Add([]byte{fzInsert, 2, 1, fzInsert, 2, 2, fzInsert, 2, 3, fzInsert, 2, 4, fzDelete, 2, 1, fzDelete, 2, 2,
		fzDelete, 2, 3, fzCompact, fzAudit, fzCheckpoint, fzReopen, 2, 1, 0, fzRange, 1, 4})
	f.Add([]byte{fzBadInsert, 0, fzBadInsert, 1, fzBatch, 3, 0, 1, 1, 2, 2, 3, 3, fzCheckpoint, fzCheckpoint,
		fzInsert, 5, 5, fzCheckpoint, fzReopen, 1, 1, 1, fzDeleteAbsent, 5, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{data: data}
		dir := t.TempDir()
		ctx := context.Background()
		open := func() *Store {
			o := fuzzOptions(1<<(in.byte()%3), 1+int(in.byte()%3), 1+int(in.byte()%2), wal.MinSegmentSize)
			s, err := Open(dir, o)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
		s := open()
		defer func() { s.Close() }()
		m := model{}
		key := func() cid.CID { return w(1 + uint64(in.byte()%6)) }
		val := func() cid.CID { return w(1 + uint64(in.byte()%8)) }
		reopens := 0
		for step := 0; step < 300 && !in.done(); step++ {
			var k, v cid.CID
			switch in.byte() % opCount {
			case fzInsert, fzInsert2, fzInsert3:
				k, v = key(), val()
				must(t, s.Insert(k, v))
				m.add(k, v)
			case fzDelete, fzDelete2, fzDeleteAbsent:
				k, v = key(), val()
				must(t, s.Delete(k, v))
				if delete(m[k], v); len(m[k]) == 0 {
					delete(m, k)
				}
			case fzDeleteKey:
				k = key()
				must(t, s.DeleteKey(k))
				delete(m, k)
			case fzBatch:
				pairs := make([]Pair, in.byte()%6)
				zero := in.byte()
				for i := range pairs {
					pairs[i] = Pair{key(), val()}
				}
				bad := len(pairs) > 0 && zero%4 == 0
				if bad {
					if zero&4 != 0 {
						pairs[int(zero>>3)%len(pairs)].Key = cid.Zero
					} else {
						pairs[int(zero>>3)%len(pairs)].Value = cid.Zero
					}
				}
				err := s.InsertBatch(pairs)
				if bad {
					if !errors.Is(err, ErrInvalidCID) {
						t.Fatalf("step %d: InsertBatch with a zero CID = %v, want ErrInvalidCID", step, err)
					}
				} else {
					must(t, err)
					for _, p := range pairs {
						m.add(p.Key, p.Value)
					}
				}
				if len(pairs) > 0 {
					k, v = pairs[0].Key, pairs[0].Value
				}
			case fzBadInsert:
				k, v = w(1), w(1)
				if in.byte()%2 == 0 {
					k = cid.Zero
				} else {
					v = cid.Zero
				}
				if err := s.Insert(k, v); !errors.Is(err, ErrInvalidCID) {
					t.Fatalf("step %d: Insert with a zero CID = %v, want ErrInvalidCID", step, err)
				}
			case fzCheckpoint:
				must(t, s.Checkpoint(ctx))
			case fzReopen:
				if reopens++; reopens > 5 {
					break
				}
				must(t, s.Close())
				s = open()
				checkAll(t, s, m, 0, step)
			case fzCompact:
				must(t, s.TriggerWorker(ctx, WorkerCompact))
			case fzAudit:
				must(t, s.TriggerWorker(ctx, WorkerAudit))
				if n, err := s.Audit(ctx); err != nil || n != 0 {
					t.Fatalf("step %d: Audit repaired %d shards, err %v", step, n, err)
				}
			case fzGC:
				must(t, s.TriggerWorker(ctx, WorkerGC))
			case fzRange:
				from, to := key(), key()
				if in.byte()%4 == 0 {
					from = cid.Zero
				}
				checkRange(t, s, m, from, to, step)
			case fzCheck:
				k, v = key(), val()
			}
			if !k.IsZero() {
				checkKey(t, s, m, k, v, step)
			}
			if step%8 == 7 {
				checkAll(t, s, m, 0, step)
			}
		}
		checkAll(t, s, m, 0, -1)
		checkRange(t, s, m, cid.Zero, cid.Zero, -1)
		must(t, s.Close())
		s = open()
		checkAll(t, s, m, 0, -2)
	})
}

// stateKey is a canonical encoding of a store's content: every pair in
// order.
func stateKey(m model) string {
	keys := make([]cid.CID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cid.Compare)
	var b []byte
	for _, k := range keys {
		for _, v := range m.values(k) {
			b = append(append(b, k[:]...), v[:]...)
		}
	}
	return string(b)
}

// storeState reads the whole store into a model.
func storeState(s *Store) model {
	m := model{}
	for k, vs := range s.All() {
		for _, v := range vs {
			m.add(k, v)
		}
	}
	return m
}

// Damage kinds of FuzzRecovery.
const (
	dmTruncate = iota // file, offset
	dmFlip            // file, offset, bit
	dmZero            // file, offset, length
	dmRemove          // file
	dmKinds
)

// FuzzRecovery builds a store directory from a deterministic workload (the
// first 8 input bytes seed it; the next pick segment size, snapshots kept
// and shard count), with inserts, deletes, batches and checkpoints, and
// records the state after every acknowledged operation. It closes the
// store, damages its files as the rest of the input says (truncate a WAL
// segment or snapshot, flip a bit, zero a range, remove a file), and opens
// it again.
//
// The invariant: Open either fails with ErrCorrupt, and VerifyDir agrees,
// or yields exactly one of the recorded prefix states, never a pair that
// was not written; without damage it yields the final state. A repair open
// (Options.Repair) always succeeds and obeys the same rule, and VerifyDir
// then finds nothing wrong. A store that opened accepts a new write, and a
// further reopen shows the recovered state plus that write.
func FuzzRecovery(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 40, 1, 0})
	f.Add([]byte{9, 9, 9, 9, 9, 9, 9, 9, 10, 2, 1, 1, dmTruncate, 0, 0, 200})
	f.Add([]byte{7, 0, 0, 0, 0, 0, 0, 1, 30, 1, 2, 1, dmFlip, 255, 1, 0, 3})
	f.Add([]byte{5, 0, 0, 0, 0, 0, 0, 2, 20, 0, 0, 2, dmFlip, 0, 0, 50, 1, dmZero, 3, 0, 90, 9})
	f.Add([]byte{3, 1, 4, 1, 5, 9, 2, 6, 60, 2, 1, 1, dmRemove, 254})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{data: data}
		var seed [8]byte
		for i := range seed {
			seed[i] = in.byte()
		}
		segSize := wal.MinSegmentSize + int64(in.byte())*16
		kept := 1 + int(in.byte()%3)
		shards := 1 << (in.byte() % 3)
		rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:]), 0x5eed))

		dir := t.TempDir()
		ctx := context.Background()
		opts := fuzzOptions(shards, 2, kept, segSize)
		s, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		m := model{}
		states := map[string]bool{stateKey(m): true}
		key := func() cid.CID { return w(1 + rng.Uint64N(8)) }
		val := func() cid.CID { return w(1 + rng.Uint64N(6)) }
		ops := 10 + rng.IntN(70)
		for i, ckpts := 0, 0; i < ops; i++ {
			switch r := rng.IntN(100); {
			case r < 50:
				k, v := key(), val()
				must(t, s.Insert(k, v))
				m.add(k, v)
			case r < 65:
				k, v := key(), val()
				must(t, s.Delete(k, v))
				if delete(m[k], v); len(m[k]) == 0 {
					delete(m, k)
				}
			case r < 72:
				k := key()
				must(t, s.DeleteKey(k))
				delete(m, k)
			case r < 88:
				pairs := make([]Pair, 1+rng.IntN(5))
				for j := range pairs {
					pairs[j] = Pair{key(), val()}
					m.add(pairs[j].Key, pairs[j].Value)
				}
				must(t, s.InsertBatch(pairs))
			default:
				if ckpts < 4 {
					ckpts++
					must(t, s.Checkpoint(ctx))
				}
			}
			states[stateKey(m)] = true
		}
		final := stateKey(m)
		must(t, s.Close())

		// Damage.
		var files []string
		for _, pat := range []string{filepath.Join(dir, walDir, "*.wal"), filepath.Join(dir, snapDir, "*.snap")} {
			fs, err := filepath.Glob(pat)
			must(t, err)
			files = append(files, fs...)
		}
		sort.Strings(files)
		damaged := false
		for n := in.byte() % 4; n > 0 && len(files) > 0; n-- {
			path := files[int(in.byte())%len(files)]
			b, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by an earlier action
			}
			must(t, err)
			orig := bytes.Clone(b)
			switch in.byte() % dmKinds {
			case dmTruncate:
				b = b[:in.uint16()%(len(b)+1)]
			case dmFlip:
				if len(b) > 0 {
					b[in.uint16()%len(b)] ^= 1 << (in.byte() % 8)
				}
			case dmZero:
				if len(b) > 0 {
					off := in.uint16() % len(b)
					clear(b[off:min(len(b), off+1+int(in.byte()%32))])
				}
			case dmRemove:
				must(t, os.Remove(path))
				damaged = true
				continue
			}
			if !bytes.Equal(b, orig) {
				damaged = true
				must(t, os.WriteFile(path, b, 0o600))
			}
		}

		// Recover: a prefix state or ErrCorrupt; the final state without
		// damage.
		ro := fuzzOptions(1<<(in.byte()%3), 2, kept, segSize)
		r, err := Open(dir, ro)
		repaired := false
		if err != nil {
			if !damaged {
				t.Fatalf("Open of an undamaged directory: %v", err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, snapshot.ErrCorrupt) {
				t.Fatalf("Open of a damaged directory: %v, want ErrCorrupt", err)
			}
			if _, verr := VerifyDir(nil, dir); !errors.Is(verr, ErrCorrupt) {
				t.Fatalf("Open failed (%v) but VerifyDir says %v", err, verr)
			}
			// Repair makes every damaged directory open again.
			ro.Repair = true
			r, err = Open(dir, ro)
			if err != nil {
				t.Fatalf("Open with Repair: %v", err)
			}
			ro.Repair, repaired = false, true
		}
		got := storeState(r)
		if !states[stateKey(got)] {
			r.Close()
			t.Fatalf("recovered a state that was never acknowledged (damaged %v): %d keys, %d pairs", damaged, len(got), r.Pairs())
		}
		if !damaged && stateKey(got) != final {
			r.Close()
			t.Fatalf("recovered an older state from an undamaged directory")
		}
		// The recovered store goes on from where it is.
		extra := Pair{w(100), w(100)}
		if err := r.Insert(extra.Key, extra.Value); err != nil {
			r.Close()
			t.Fatalf("Insert after recovery: %v", err)
		}
		got.add(extra.Key, extra.Value)
		must(t, r.Close())
		if _, err := VerifyDir(nil, dir); err != nil && (!damaged || repaired) {
			t.Fatalf("VerifyDir after recovery (repaired %v): %v", repaired, err)
		}
		r2, err := Open(dir, ro)
		if err != nil {
			t.Fatalf("reopen after recovery and a write: %v", err)
		}
		again := storeState(r2)
		must(t, r2.Close())
		if stateKey(again) != stateKey(got) {
			t.Fatalf("reopen after recovery: %d keys, want %d", len(again), len(got))
		}
	})
}
