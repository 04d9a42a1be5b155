package shard

import "testing"

// A maintenance step that panics while it holds the shard's lock (a bug,
// which the maintenance scheduler recovers) releases the lock, so later
// writers and Close do not hang.
func TestPanickingStepReleasesLock(t *testing.T) {
	s := newShard(t, 4)
	s.Lock()
	for i := uint64(1); i <= 10; i++ {
		s.Add(w(i), w(i))
	}
	s.Unlock()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the step did not panic")
			}
		}()
		s.walkStep(position{}, maintainChunk, func(*record) { panic("bug") })
	}()
	if !s.mu.TryLock() {
		t.Fatal("the shard stayed locked after a panicking step")
	}
	s.mu.Unlock()
	if res := s.Audit(func() bool { return false }); res.Mismatches != 0 {
		t.Fatalf("audit after the panic: %+v", res)
	}
}
