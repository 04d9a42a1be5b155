package store

import (
	"runtime/debug"
	"testing"
)

// TestPauseGCNests checks that overlapping pauses keep the collector off
// until the last resume, which restores the percentage found first, and
// that a second call of a resume function does nothing.
func TestPauseGCNests(t *testing.T) {
	old := debug.SetGCPercent(137)
	defer debug.SetGCPercent(old)
	a := pauseGC()
	b := pauseGC()
	a()
	a()
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("GC percent %d after the first of two resumes, want -1 (off)", p)
	}
	b()
	if p := debug.SetGCPercent(137); p != 137 {
		t.Fatalf("GC percent %d after the last resume, want 137", p)
	}
}
