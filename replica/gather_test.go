package replica

import (
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
