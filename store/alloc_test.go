package store

import (
	"testing"

	"github.com/cidstore/cidstore/cid"
)

// The read and insert hot paths allocate nothing of their own: Get only
// the slice it returns, AppendValues, Contains and Count nothing, and an
// in-memory Insert of a new key one map entry (its record comes from a
// slab and index nodes grow rarely, so both round away in the average),
// and one of a new value for a key of several values its new value set.
func TestHotPathAllocs(t *testing.T) {
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 10_000
	for i := range uint64(n) {
		p := benchPair(i)
		if err := s.Insert(p.Key, p.Value); err != nil {
			t.Fatal(err)
		}
	}
	present, absent := benchPair(7), benchKey(1<<50)
	buf := make([]cid.CID, 0, 4)
	reads := []struct {
		name string
		max  float64
		fn   func()
	}{
		{"Get", 1, func() { s.Get(present.Key) }},
		{"Get absent", 0, func() { s.Get(absent) }},
		{"AppendValues", 0, func() { buf = s.AppendValues(buf[:0], present.Key) }},
		{"AppendValues absent", 0, func() { buf = s.AppendValues(buf[:0], absent) }},
		{"Contains", 0, func() { s.Contains(present.Key, present.Value) }},
		{"Count", 0, func() { s.Count(present.Key) }},
	}
	for _, r := range reads {
		if got := testing.AllocsPerRun(1000, r.fn); got > r.max {
			t.Errorf("%s: %v allocations per call, want at most %v", r.name, got, r.max)
		}
	}
	next := uint64(n)
	insert := func() {
		p := benchPair(next)
		next++
		if err := s.Insert(p.Key, p.Value); err != nil {
			t.Fatal(err)
		}
	}
	if got := testing.AllocsPerRun(5000, insert); got > 1 {
		t.Errorf("Insert of a new key: %v allocations per call, want at most 1", got)
	}
	dup := func() {
		if err := s.Insert(present.Key, present.Value); err != nil {
			t.Fatal(err)
		}
	}
	if got := testing.AllocsPerRun(1000, dup); got != 0 {
		t.Errorf("Insert of a present pair: %v allocations per call, want 0", got)
	}
	// A new value for a key of a few values: its new value set, one
	// allocation, swapped into the key's record (no map entry, no record).
	multi := benchPair(8).Key
	for i := range uint64(3) {
		if err := s.Insert(multi, benchKey(1<<51+i)); err != nil {
			t.Fatal(err)
		}
	}
	val := uint64(1 << 52)
	grow := func() {
		val++
		if err := s.Insert(multi, benchKey(val)); err != nil {
			t.Fatal(err)
		}
	}
	if got := testing.AllocsPerRun(20, grow); got > 1 {
		t.Errorf("Insert of a new value of a key of several: %v allocations per call, want at most 1", got)
	}
}
