package maintenance

import "time"

// Clock makes timers. Tests substitute a fake to drive workers without
// waiting.
type Clock interface {
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer a Scheduler uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// RealClock is the Clock of the time package.
type RealClock struct{}

// NewTimer returns a time.Timer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }
