package replica

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/cidstore/cidstore/store"
)

// Concurrent small writes on the leader share log entries, and each is
// applied, on every node, exactly as it would be alone.
func TestGatheredWrites(t *testing.T) {
	const writers, each = 32, 50
	c := newCluster(t, 3, nil)
	l := c.waitLeader()
	first := l.node.Status().LastIndex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := key(uint64(w*each + i))
				var err error
				switch i % 3 {
				case 0, 1:
					err = l.node.Insert(k, val(1))
				case 2:
					// a small batch that inserts and deletes within itself
					err = l.node.ApplyBatch([]store.PairOp{
						{Kind: store.OpInsert, Key: k, Value: val(2)},
						{Kind: store.OpInsert, Key: k, Value: val(3)},
						{Kind: store.OpDelete, Key: k, Value: val(2)},
					})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	entries := l.node.Status().LastIndex - first
	t.Logf("%d writes in %d log entries", writers*each, entries)
	if entries >= writers*each {
		t.Errorf("%d writes took %d entries: none were gathered", writers*each, entries)
	}
	c.waitConverged()
	for _, m := range c.running() {
		for w := range writers {
			for i := range each {
				k := key(uint64(w*each + i))
				want := []uint64{1}
				if i%3 == 2 {
					want = []uint64{3}
				}
				got := m.st.Get(k)
				if len(got) != 1 || got[0] != val(want[0]) {
					t.Fatalf("%s: key %d holds %v", m.id, w*each+i, got)
				}
			}
		}
	}
	if l.node.gather.inflight != 0 || len(l.node.gather.queue) != 0 {
		t.Fatalf("after the writes: %d entries in flight, %d queued", l.node.gather.inflight, len(l.node.gather.queue))
	}
}

// A pair command's Result says which of its operations changed the store,
// on both paths: gathered (small commands, concurrent) and alone (larger
// than gatherMaxOps).
func TestPairResults(t *testing.T) {
	c := newCluster(t, 1, nil)
	l := c.waitLeader()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := key(uint64(1000 + w))
			ops := []store.PairOp{
				{Kind: store.OpInsert, Key: k, Value: val(1)},
				{Kind: store.OpInsert, Key: k, Value: val(1)}, // present by then
				{Kind: store.OpDelete, Key: k, Value: val(2)}, // absent
				{Kind: store.OpInsert, Key: k, Value: val(2)},
			}
			r, err := l.node.Apply(ctx, ApplyBatch(ops))
			if err != nil {
				t.Error(err)
				return
			}
			if want := []bool{true, false, false, true}; r.Changed != 2 || !slices.Equal(r.ChangedOps, want) {
				t.Errorf("writer %d: Result %+v, want Changed 2, ChangedOps %v", w, r, want)
			}
		}()
	}
	wg.Wait()
	big := make([]store.PairOp, 2*gatherMaxOps)
	for i := range big {
		big[i] = store.PairOp{Kind: store.OpInsert, Key: key(uint64(1000 + i%16)), Value: val(1)}
	}
	r, err := l.node.Apply(ctx, ApplyBatch(big))
	must(t, err)
	if r.Changed != 8 || len(r.ChangedOps) != len(big) || countTrue(r.ChangedOps) != 8 {
		t.Fatalf("large batch: Changed %d, %d flags (%d set); want 8 of %d", r.Changed, len(r.ChangedOps), countTrue(r.ChangedOps), len(big))
	}
	for i := range 16 {
		if want := i >= 8; r.ChangedOps[i] != want {
			t.Fatalf("large batch: operation %d changed %v, want %v", i, r.ChangedOps[i], want)
		}
	}
}
