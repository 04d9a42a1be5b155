package store

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// faultKind is one way the filesystem fails under the store.
type faultKind struct {
	name  string
	arm   func(f *vfs.FaultFS, n int64) // fail the nth write or sync from now
	cause error
	write bool // a failed write: the failing call's record never reaches the file whole
}

var faultKinds = []faultKind{
	// A full disk fails the write and its retry: a log that preallocates
	// retries a write that ran out of space once, after giving up its
	// spare segment.
	{"write ENOSPC", func(f *vfs.FaultFS, n int64) {
		f.FailWrite(f.Writes()+n, syscall.ENOSPC)
		f.FailWrite(f.Writes()+n+1, syscall.ENOSPC)
	}, syscall.ENOSPC, true},
	{"write EIO", func(f *vfs.FaultFS, n int64) { f.FailWrite(f.Writes()+n, syscall.EIO) }, syscall.EIO, true},
	{"short write", func(f *vfs.FaultFS, n int64) { f.ShortWrite(f.Writes() + n) }, io.ErrShortWrite, true},
	{"fsync EIO", func(f *vfs.FaultFS, n int64) { f.FailSync(f.Syncs()+n, syscall.EIO) }, syscall.EIO, false},
}

// Segment sizes of the fault tests. Without rotation every write the WAL
// makes after Open is one flusher round's records and every fsync is that
// round's fsync, so with one writer the nth write or fsync belongs to the
// nth call that changes the store. With the smallest segments a rotation
// (a header write and its fsync) comes every few dozen records, so some
// faults hit the creation of a segment instead.
const (
	faultNoRotation = 0
	faultRotation   = wal.MinSegmentSize
)

// Keys and values of the fault tests: writer g's pair i has value
// faultVal(g, i) under key faultKey(g, i/3), so keys hold up to three
// values and DeleteKey removes several pairs.
func faultKey(g, j uint64) cid.CID { return cid.FromWords(0xFA, g, j, 1) }
func faultVal(g, i uint64) cid.CID { return cid.FromWords(0xFB, g, i, 1) }
func faultPair(g, i uint64) Pair   { return Pair{faultKey(g, i/3), faultVal(g, i)} }

// faultWriter drives one writer's key space and models it.
type faultWriter struct {
	g     uint64
	rng   *rand.Rand
	next  uint64          // next fresh pair index
	state map[uint64]bool // acknowledged state of every pair: true present, false deleted
	live  []uint64        // pairs acknowledged present, in no particular order
	// The failed call's pairs and their state before it; nil until a call
	// fails.
	failed map[uint64]bool
	calls  int // calls that returned nil and changed the store
}

func newFaultWriter(g, seed uint64) *faultWriter {
	return &faultWriter{g: g, rng: rand.New(rand.NewPCG(seed, g)), state: map[uint64]bool{}}
}

func (w *faultWriter) setPresent(i uint64, present bool) {
	if present && !w.state[i] {
		w.live = append(w.live, i)
	}
	if !present {
		for j, x := range w.live {
			if x == i {
				w.live[j] = w.live[len(w.live)-1]
				w.live = w.live[:len(w.live)-1]
				break
			}
		}
	}
	w.state[i] = present
}

// step makes one random write that changes the store (or, now and then, a
// no-op insert of a present pair first) and updates the model only if it
// returned nil. It returns the error of the changing call.
func (w *faultWriter) step(s *Store) error {
	if len(w.live) > 0 && w.rng.IntN(10) == 0 {
		// A no-op: nothing to write, the pair is durable already.
		p := faultPair(w.g, w.live[w.rng.IntN(len(w.live))])
		if err := s.Insert(p.Key, p.Value); err != nil {
			return fmt.Errorf("no-op insert of an acknowledged pair: %w", err)
		}
	}
	var touched []uint64 // pairs the call changes
	var after bool       // their state if it succeeds
	var call func() error
	r := w.rng.IntN(100)
	switch {
	case r < 15 && len(w.live) > 0:
		i := w.live[w.rng.IntN(len(w.live))]
		touched, after = []uint64{i}, false
		p := faultPair(w.g, i)
		call = func() error { return s.Delete(p.Key, p.Value) }
	case r < 22 && len(w.live) > 0:
		j := w.live[w.rng.IntN(len(w.live))] / 3
		for i := 3 * j; i < 3*j+3; i++ {
			if w.state[i] {
				touched = append(touched, i)
			}
		}
		after = false
		call = func() error { return s.DeleteKey(faultKey(w.g, j)) }
	case r < 45:
		// Up to 41 pairs over 14 keys: a batch queued on many shards.
		n := 2 + uint64(w.rng.IntN(40))
		var pairs []Pair
		for i := w.next; i < w.next+n; i++ {
			touched = append(touched, i)
			pairs = append(pairs, faultPair(w.g, i))
		}
		w.next += n
		after = true
		call = func() error { return s.InsertBatch(pairs) }
	default:
		i := w.next
		w.next++
		touched, after = []uint64{i}, true
		p := faultPair(w.g, i)
		call = func() error { return s.Insert(p.Key, p.Value) }
	}
	if err := call(); err != nil {
		w.failed = map[uint64]bool{}
		for _, i := range touched {
			w.failed[i] = w.state[i]
		}
		return err
	}
	for _, i := range touched {
		w.setPresent(i, after)
	}
	w.calls++
	return nil
}

// probe checks that every kind of write fails with the sticky error now,
// including no-ops, and that reads still show every acknowledged pair.
func (w *faultWriter) probe(s *Store, check func(string, error)) {
	fresh := faultPair(w.g, w.next+1000)
	check("Insert of a new pair", s.Insert(fresh.Key, fresh.Value))
	check("InsertBatch", s.InsertBatch([]Pair{fresh, faultPair(w.g, w.next+1001)}))
	check("Delete of an absent pair", s.Delete(fresh.Key, fresh.Value))
	check("DeleteKey of an absent key", s.DeleteKey(fresh.Key))
	if len(w.live) > 0 {
		p := faultPair(w.g, w.live[0])
		check("Insert of a present pair (no-op)", s.Insert(p.Key, p.Value))
		check("InsertBatch of a present pair (no-op)", s.InsertBatch([]Pair{p}))
		check("Delete of a present pair", s.Delete(p.Key, p.Value))
		check("DeleteKey of a present key", s.DeleteKey(p.Key))
	}
}

// verify compares s with the model. The failed call's pairs may have
// either state, unless strict: then they must still have their state from
// before the call (for a fresh pair, absent).
func (w *faultWriter) verify(s *Store, strict bool) error {
	for i, present := range w.state {
		if _, ok := w.failed[i]; ok {
			continue
		}
		p := faultPair(w.g, i)
		if s.Contains(p.Key, p.Value) != present {
			return fmt.Errorf("writer %d pair %d: present %v, acknowledged state %v", w.g, i, !present, present)
		}
	}
	if !strict {
		return nil
	}
	for i, before := range w.failed {
		p := faultPair(w.g, i)
		if s.Contains(p.Key, p.Value) != before {
			return fmt.Errorf("writer %d pair %d: the failed call's change is visible", w.g, i)
		}
	}
	return nil
}

// known reports whether pair (g, i) may be in the store.
func (w *faultWriter) known(i uint64) bool {
	_, failed := w.failed[i]
	return w.state[i] || failed
}

// checkOnly verifies that every pair in s belongs to one of ws.
func checkOnly(s *Store, ws []*faultWriter) error {
	for k, vs := range s.All() {
		for _, v := range vs {
			tag, g, i, one := v.Words()
			if tag != 0xFB || one != 1 || g >= uint64(len(ws)) || k != faultKey(g, i/3) || !ws[g].known(i) {
				return fmt.Errorf("pair %s -> %s was never written", k.EString(), v.EString())
			}
		}
	}
	return nil
}

// TestFaultInjection fails the nth write or fsync under a store with one
// writer and checks the read-only contract: the failing call returns an
// error wrapping ErrReadOnly and the cause, every later write fails the
// same way, reads keep working, and after a reopen with a healthy
// filesystem every acknowledged write is there and the store is writable.
func TestFaultInjection(t *testing.T) {
	for _, fk := range faultKinds {
		for _, seg := range []int64{faultNoRotation, faultRotation} {
			for _, n := range []int64{1, 2, 5, 13, 40, 100} {
				seed := uint64(n)*1000 + uint64(seg)
				name := fmt.Sprintf("%s/seg=%d/n=%d", fk.name, seg, n)
				t.Run(name, func(t *testing.T) { faultSequential(t, fk, seg, n, seed) })
			}
		}
	}
}

func faultSequential(t *testing.T, fk faultKind, seg, n int64, seed uint64) {
	fatalf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
	}
	dir := t.TempDir()
	w := newFaultWriter(0, seed)
	// Some durable history first, written without faults.
	s, err := Open(dir, Options{SegmentSize: seg})
	if err != nil {
		fatalf("%v", err)
	}
	for range 10 {
		if err := w.step(s); err != nil {
			fatalf("%v", err)
		}
	}
	if err := s.Close(); err != nil {
		fatalf("%v", err)
	}
	ffs := vfs.NewFaultFS(vfs.Default)
	s, err = Open(dir, Options{FS: ffs, SegmentSize: seg})
	if err != nil {
		fatalf("%v", err)
	}
	fk.arm(ffs, n)
	before := w.calls
	var werr error
	for range 10 * n {
		if werr = w.step(s); werr != nil {
			break
		}
	}
	if werr == nil {
		fatalf("no write failed in %d calls", 10*n)
	}
	if !errors.Is(werr, ErrReadOnly) || !errors.Is(werr, fk.cause) {
		fatalf("failed write returned %v; want ErrReadOnly wrapping %v", werr, fk.cause)
	}
	// One writer: every call that changes the store is one record, one
	// flusher round, one write and one fsync. Rotation adds a header write
	// and fsync now and then.
	failedAt := int64(w.calls-before) + 1
	if seg == faultNoRotation && failedAt != n {
		fatalf("call %d failed, want call %d: the fault did not hit its record", failedAt, n)
	}
	if failedAt > n {
		fatalf("call %d failed, after the %dth write or fsync", failedAt, n)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrReadOnly) || !errors.Is(err, fk.cause) {
			fatalf("%s after the failure: %v; want ErrReadOnly wrapping %v", what, err, fk.cause)
		}
	}
	w.probe(s, check)
	w.probe(s, check) // still failing: the error is sticky
	if err := w.verify(s, false); err != nil {
		fatalf("reads after the failure: %v", err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, fk.cause) {
		fatalf("Close: %v; want nil or an error wrapping %v", err, fk.cause)
	}
	faultReopen(t, dir, seg, []*faultWriter{w}, fk.write, seed)
}

// faultReopen reopens dir with the operating system's filesystem, checks
// the writers' models and that the store takes writes again.
func faultReopen(t *testing.T, dir string, seg int64, ws []*faultWriter, strict bool, seed uint64) {
	t.Helper()
	s, err := Open(dir, Options{SegmentSize: seg})
	if err != nil {
		t.Fatalf("seed %d: reopen: %v", seed, err)
	}
	for _, w := range ws {
		if err := w.verify(s, strict); err != nil {
			s.Close()
			t.Fatalf("seed %d: after reopen: %v", seed, err)
		}
	}
	if err := checkOnly(s, ws); err != nil {
		s.Close()
		t.Fatalf("seed %d: after reopen: %v", seed, err)
	}
	// Writable again: the failure does not survive a reopen. The failed
	// calls' pairs keep the state recovery gave them.
	for _, w := range ws {
		for i := range w.failed {
			p := faultPair(w.g, i)
			w.setPresent(i, s.Contains(p.Key, p.Value))
		}
		w.failed = nil
		for range 5 {
			if err := w.step(s); err != nil {
				s.Close()
				t.Fatalf("seed %d: write after reopen: %v", seed, err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("seed %d: close: %v", seed, err)
	}
	s, err = Open(dir, Options{SegmentSize: seg})
	if err != nil {
		t.Fatalf("seed %d: second reopen: %v", seed, err)
	}
	defer s.Close()
	for _, w := range ws {
		if err := w.verify(s, true); err != nil {
			t.Fatalf("seed %d: after second reopen: %v", seed, err)
		}
	}
}

// TestFaultInjectionConcurrent is TestFaultInjection with several writers
// sharing the store, so the failure hits a group commit with many waiters.
// Every writer must see the failure, and no call that returned an error
// may be counted as acknowledged.
func TestFaultInjectionConcurrent(t *testing.T) {
	const writers = 8
	for _, fk := range faultKinds {
		for _, seg := range []int64{faultNoRotation, faultRotation} {
			for _, n := range []int64{1, 3, 10, 30} {
				seed := uint64(n)*1000 + uint64(seg) + 7
				name := fmt.Sprintf("%s/seg=%d/n=%d", fk.name, seg, n)
				t.Run(name, func(t *testing.T) { faultConcurrent(t, fk, seg, n, writers, seed) })
			}
		}
	}
}

func faultConcurrent(t *testing.T, fk faultKind, seg, n int64, writers int, seed uint64) {
	dir := t.TempDir()
	ffs := vfs.NewFaultFS(vfs.Default)
	s, err := Open(dir, Options{FS: ffs, SegmentSize: seg})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	ws := make([]*faultWriter, writers)
	for g := range ws {
		ws[g] = newFaultWriter(uint64(g), seed)
	}
	fk.arm(ffs, n)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for g, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer writes until a call fails. The fault is armed
			// for one write or fsync, and the failure is sticky, so every
			// writer's calls fail from then on.
			for range 100_000 {
				if err := w.step(s); err != nil {
					if !errors.Is(err, ErrReadOnly) || !errors.Is(err, fk.cause) {
						errs[g] = fmt.Errorf("writer %d: failed write returned %v; want ErrReadOnly wrapping %v", g, err, fk.cause)
						return
					}
					w.probe(s, func(what string, err error) {
						if errs[g] == nil && (!errors.Is(err, ErrReadOnly) || !errors.Is(err, fk.cause)) {
							errs[g] = fmt.Errorf("writer %d: %s after the failure: %v", g, what, err)
						}
					})
					return
				}
			}
			errs[g] = fmt.Errorf("writer %d: no call failed", g)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Close()
		t.Fatalf("seed %d: %v", seed, err)
	}
	for _, w := range ws {
		if err := w.verify(s, false); err != nil {
			s.Close()
			t.Fatalf("seed %d: reads after the failure: %v", seed, err)
		}
	}
	if err := s.Close(); err != nil && !errors.Is(err, fk.cause) {
		t.Fatalf("seed %d: Close: %v; want nil or an error wrapping %v", seed, err, fk.cause)
	}
	faultReopen(t, dir, seg, ws, false, seed)
}
