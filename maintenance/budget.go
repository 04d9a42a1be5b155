package maintenance

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// budgetBurst is the most running time the workers can bank while idle,
// so a quiet period never buys a long burst of background work.
const budgetBurst = 20 * time.Millisecond

// MinDuty is the smallest duty a Scheduler applies (Options.Duty); a
// smaller one (or NaN) counts as MinDuty, so a debt is always repaid in
// bounded time.
const MinDuty = 0.001

// budget is a Scheduler's shared allowance of worker running time: a
// token bucket filled at Options.Duty seconds per second of wall clock
// (capped at budgetBurst) and drained by the time workers spend running.
// It measures and waits in real time whatever the Scheduler's Clock,
// because it bounds real CPU use.
type budget struct {
	duty   func() float64   // nil: no pacing
	now    func() time.Time // time.Now; tests substitute their own
	mu     sync.Mutex
	last   time.Time     // when tokens was last brought up to date
	tokens time.Duration // running time available; negative is debt
}

func newBudget(duty func() float64) *budget {
	return &budget{duty: duty, now: time.Now, last: time.Now(), tokens: budgetBurst}
}

// refill brings tokens up to now and returns the duty in force; a duty of
// 1 or more means no pacing. b.mu must be held.
func (b *budget) refill(now time.Time) float64 {
	duty := 1.0
	if b.duty != nil {
		if duty = b.duty(); !(duty >= MinDuty) { // also catches NaN
			duty = MinDuty
		}
	}
	if now.After(b.last) {
		b.tokens += time.Duration(float64(now.Sub(b.last)) * duty)
		b.last = now
	}
	if b.tokens > budgetBurst || duty >= 1 {
		b.tokens = budgetBurst
	}
	return duty
}

// charge takes d of running time from the allowance.
func (b *budget) charge(d time.Duration) {
	b.mu.Lock()
	b.refill(b.now())
	b.tokens -= d
	b.mu.Unlock()
}

// delay is how long until the allowance is out of debt.
func (b *budget) delay() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	duty := b.refill(b.now())
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(float64(-b.tokens) / duty)
}

// wait blocks until the allowance is out of debt or ctx ends.
func (b *budget) wait(ctx context.Context) (time.Duration, error) {
	var waited time.Duration
	for {
		d := b.delay()
		if d <= 0 {
			return waited, ctx.Err()
		}
		t := time.NewTimer(d)
		start := time.Now()
		select {
		case <-ctx.Done():
			t.Stop()
			return waited + time.Since(start), ctx.Err()
		case <-t.C:
			waited += time.Since(start)
		}
	}
}

// Pacer keeps a worker's run within the Scheduler's share of running time
// (Options.Duty). A worker doing a long pass calls Pause between
// bounded steps: the time since the last Pause is charged, and Pause
// sleeps while the workers together are over their share. A nil *Pacer
// (what a triggered run gets) never sleeps.
type Pacer struct {
	b      *budget
	mark   time.Time
	paused time.Duration
	idle   atomic.Int64 // nanoseconds reported by Idle since the last charge
}

func newPacer(b *budget) *Pacer { return &Pacer{b: b, mark: b.now()} }

// Pause charges the work done since the previous Pause (or the start of
// the run), then waits until the allowance permits more. It returns
// ctx.Err() if ctx ends, and the worker should then stop.
func (p *Pacer) Pause(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	p.b.charge(p.worked())
	waited, err := p.b.wait(ctx)
	p.paused += waited
	p.mark = p.b.now()
	return err
}

// Idle records that d of the time since the last Pause went to waiting
// rather than working (a worker sleeping to pace its I/O, say), so it is
// not charged. It does nothing on a nil Pacer. It may be called from any
// goroutine working for the run.
func (p *Pacer) Idle(d time.Duration) {
	if p == nil || d <= 0 {
		return
	}
	p.idle.Add(int64(d))
}

// worked is the time since the last charge that was not reported idle.
func (p *Pacer) worked() time.Duration {
	return max(p.b.now().Sub(p.mark)-time.Duration(p.idle.Swap(0)), 0)
}

// finish charges the work since the last Pause and returns the total time
// the run spent paused.
func (p *Pacer) finish() time.Duration {
	if p == nil {
		return 0
	}
	p.b.charge(p.worked())
	return p.paused
}
