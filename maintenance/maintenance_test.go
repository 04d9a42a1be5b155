package maintenance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig stands for the configuration a user of the package keeps in
// a Holder.
type testConfig struct {
	Count    int64
	Kept     int // must be positive
	Interval time.Duration
	Duty     float64
}

var errInvalid = errors.New("invalid test config")

func validate(c testConfig) error {
	if c.Kept < 1 {
		return fmt.Errorf("%w: Kept = %d", errInvalid, c.Kept)
	}
	return nil
}

func defaultConfig() testConfig { return testConfig{Kept: 2, Interval: 10 * time.Minute, Duty: 0.05} }

func newHolder(t *testing.T, c testConfig) *Holder[testConfig] {
	t.Helper()
	h, err := NewHolder(c, validate)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// duty is the Options.Duty of a Scheduler over h.
func duty(h *Holder[testConfig]) func() float64 { return func() float64 { return h.Load().Duty } }

func TestNewHolderValidates(t *testing.T) {
	if _, err := NewHolder(testConfig{}, validate); !errors.Is(err, errInvalid) {
		t.Fatalf("NewHolder(invalid) = %v", err)
	}
	h, err := NewHolder(testConfig{}, nil) // nil: everything is valid
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Update(func(c testConfig) testConfig { c.Kept = -1; return c }); err != nil {
		t.Fatal(err)
	}
}

// 16 goroutines each apply 1000 increments through Update: none is lost.
func TestConcurrentUpdatesNeverLost(t *testing.T) {
	hp := newHolder(t, defaultConfig())
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if _, err := hp.Update(func(c testConfig) testConfig { c.Count++; return c }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := hp.Load().Count - defaultConfig().Count; got != 16000 {
		t.Fatalf("increments applied: %d, want 16000", got)
	}
}

func TestInvalidUpdateKeepsOld(t *testing.T) {
	h := newHolder(t, defaultConfig())
	ch, cancel := h.Subscribe()
	defer cancel()
	if _, err := h.Update(func(c testConfig) testConfig { c.Kept = 0; return c }); !errors.Is(err, errInvalid) {
		t.Fatalf("Update = %v", err)
	}
	if h.Load() != defaultConfig() {
		t.Fatal("invalid update changed the config")
	}
	select {
	case <-ch:
		t.Fatal("subscriber notified of a rejected update")
	default:
	}
	if _, err := h.Update(func(c testConfig) testConfig { c.Kept = 5; return c }); err != nil {
		t.Fatal(err)
	}
	<-ch // notified
	if h.Load().Kept != 5 {
		t.Fatal("update not applied")
	}
}

// fakeClock hands every timer to the test, which fires it.
type fakeClock struct{ timers chan *fakeTimer }

type fakeTimer struct {
	d       time.Duration
	c       chan time.Time
	stopped atomic.Bool
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{d: d, c: make(chan time.Time, 1)}
	f.timers <- t
	return t
}
func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { return !t.stopped.Swap(true) }

// fakeScheduler starts a Scheduler over h with one worker and a fake
// clock whose timers the test fires.
func fakeScheduler(t *testing.T, h *Holder[testConfig], w Worker[testConfig]) (*Scheduler[testConfig], *fakeClock) {
	t.Helper()
	clock := &fakeClock{timers: make(chan *fakeTimer, 8)}
	s := NewScheduler(h, Options{Clock: clock, Duty: duty(h)})
	must(t, s.Add(w))
	s.Start()
	return s, clock
}

// An interval change applies without a restart: the worker drops its
// 1h timer and arms one with the new interval, which then runs it.
func TestIntervalChangeAppliesLive(t *testing.T) {
	c := defaultConfig()
	c.Interval = time.Hour
	h := newHolder(t, c)
	ran := make(chan testConfig, 8)
	s, clock := fakeScheduler(t, h, Worker[testConfig]{
		Name:     "compact",
		Interval: func(c testConfig) time.Duration { return c.Interval },
		Run:      func(_ context.Context, c testConfig, _ *Pacer) error { ran <- c; return nil },
	})
	defer s.Close()

	if tm := <-clock.timers; tm.d != time.Hour {
		t.Fatalf("first timer %v, want 1h", tm.d)
	}
	if _, err := h.Update(func(c testConfig) testConfig { c.Interval = 20 * time.Millisecond; return c }); err != nil {
		t.Fatal(err)
	}
	tm := <-clock.timers
	if tm.d != 20*time.Millisecond {
		t.Fatalf("timer after update %v, want 20ms", tm.d)
	}
	tm.c <- time.Now()
	if got := <-ran; got.Interval != 20*time.Millisecond {
		t.Fatalf("run saw interval %v", got.Interval)
	}
	<-clock.timers // re-armed, so the run's stats are recorded
	if st := s.Stats(); len(st) != 1 || st[0].Runs != 1 || st[0].Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTriggerErrorsAndPanics(t *testing.T) {
	s := NewScheduler(newHolder(t, defaultConfig()), Options{})
	boom := errors.New("boom")
	must(t, s.Add(Worker[testConfig]{Name: "fails", Run: func(context.Context, testConfig, *Pacer) error { return boom }}))
	must(t, s.Add(Worker[testConfig]{Name: "panics", Run: func(context.Context, testConfig, *Pacer) error { panic("kaboom") }}))
	must(t, s.Add(Worker[testConfig]{Name: "ok", Run: func(context.Context, testConfig, *Pacer) error { return nil }}))
	if err := s.Add(Worker[testConfig]{Name: "ok", Run: func(context.Context, testConfig, *Pacer) error { return nil }}); err == nil {
		t.Fatal("duplicate worker accepted")
	}
	s.Start()
	ctx := context.Background()
	if err := s.Trigger(ctx, "fails"); !errors.Is(err, boom) {
		t.Fatalf("Trigger(fails) = %v", err)
	}
	if err := s.Trigger(ctx, "panics"); err == nil {
		t.Fatal("panic not reported")
	}
	if err := s.Trigger(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	if err := s.Trigger(ctx, "nope"); !errors.Is(err, ErrUnknownWorker) {
		t.Fatalf("Trigger(nope) = %v", err)
	}
	for _, st := range s.Stats() {
		wantErr := int64(1)
		if st.Name == "ok" {
			wantErr = 0
		}
		if st.Runs != 1 || st.Errors != wantErr {
			t.Errorf("%s: %+v", st.Name, st)
		}
	}
	s.Close()
	if err := s.Trigger(ctx, "ok"); !errors.Is(err, ErrStopped) {
		t.Fatalf("Trigger after Close = %v", err)
	}
}

// Close with every worker busy returns once they observe cancellation,
// and leaks nothing (goleak in TestMain).
func TestCloseWithBusyWorkers(t *testing.T) {
	s := NewScheduler(newHolder(t, defaultConfig()), Options{})
	started := make(chan struct{}, 4)
	for _, name := range []string{"a", "b", "c", "d"} {
		must(t, s.Add(Worker[testConfig]{Name: name, Run: func(ctx context.Context, _ testConfig, _ *Pacer) error {
			started <- struct{}{}
			<-ctx.Done() // busy until cancelled
			return ctx.Err()
		}}))
	}
	s.Start()
	for _, name := range []string{"a", "b", "c", "d"} {
		go s.Trigger(context.Background(), name)
	}
	for i := 0; i < 4; i++ {
		<-started
	}
	s.Close()
}

func TestForEach(t *testing.T) {
	var hits [100]atomic.Int32
	var running, peak atomic.Int32
	err := ForEach(context.Background(), 100, 3, func(_ context.Context, i int) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		hits[i].Add(1)
		running.Add(-1)
		if i == 7 {
			return errors.New("seven")
		}
		return nil
	})
	if err == nil || err.Error() != "seven" {
		t.Fatalf("ForEach = %v", err)
	}
	for i := range hits {
		if hits[i].Load() != 1 {
			t.Fatalf("index %d ran %d times", i, hits[i].Load())
		}
	}
	if peak.Load() > 3 {
		t.Fatalf("parallelism %d > 3", peak.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ForEach(ctx, 10, 2, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ForEach = %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The budget lets workers run Duty of the time: work beyond the burst
// becomes debt, repaid at Duty seconds per second.
func TestBudgetKeepsToDuty(t *testing.T) {
	c := defaultConfig()
	c.Duty = 0.25
	h := newHolder(t, c)
	now := time.Unix(1000, 0)
	b := newBudget(duty(h))
	b.now, b.last = func() time.Time { return now }, now
	b.charge(budgetBurst + 100*time.Millisecond) // 100ms of debt
	for _, step := range []struct {
		advance, want time.Duration
	}{
		{0, 400 * time.Millisecond},                      // 100ms / 0.25
		{200 * time.Millisecond, 200 * time.Millisecond}, // 50ms repaid
		{200 * time.Millisecond, 0},                      // all repaid
		{time.Hour, 0},                                   // credit capped at the burst
	} {
		now = now.Add(step.advance)
		if d := b.delay(); d != step.want {
			t.Fatalf("after %v: delay %v, want %v", step.advance, d, step.want)
		}
	}
	b.charge(budgetBurst + time.Millisecond)
	if d := b.delay(); d != 4*time.Millisecond {
		t.Fatalf("banked credit exceeded the burst: delay %v", d)
	}
	// A Pacer charges the time since its last Pause; that second also
	// refilled the bucket, up to the burst.
	p := newPacer(b)
	now = now.Add(time.Second)
	p.finish()
	if d := b.delay(); d != (time.Second-budgetBurst)*4 {
		t.Fatalf("after a 1s step: delay %v", d)
	}
	// Pacing off: no delay whatever the debt, and Pause returns at once.
	if _, err := h.Update(func(c testConfig) testConfig { c.Duty = 1; return c }); err != nil {
		t.Fatal(err)
	}
	b.charge(time.Hour)
	if d := b.delay(); d != 0 {
		t.Fatalf("delay %v with pacing off", d)
	}
	if err := newPacer(b).Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A nil Pacer (a triggered run) never waits, and reports cancellation.
	var np *Pacer
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := np.Pause(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("nil Pause = %v", err)
	}
}

// Close interrupts a worker paused for its budget.
func TestCloseInterruptsPause(t *testing.T) {
	c := defaultConfig()
	c.Duty = 0.001
	b := newBudget(duty(newHolder(t, c)))
	b.charge(time.Hour) // a thousand hours of debt
	p := newPacer(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Pause(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Pause = %v", err)
	}
}

// Periodic runs get a Pacer; triggered runs get nil and are not paced.
func TestPeriodicRunsArePaced(t *testing.T) {
	got := make(chan bool, 2)
	s, clock := fakeScheduler(t, newHolder(t, defaultConfig()), Worker[testConfig]{
		Name:     "audit",
		Interval: func(c testConfig) time.Duration { return c.Interval },
		Run: func(ctx context.Context, _ testConfig, p *Pacer) error {
			got <- p != nil
			return p.Pause(ctx)
		},
	})
	defer s.Close()
	tm := <-clock.timers
	tm.c <- time.Now()
	if !<-got {
		t.Fatal("periodic run got no Pacer")
	}
	<-clock.timers // re-armed after the run
	must(t, s.Trigger(context.Background(), "audit"))
	if <-got {
		t.Fatal("triggered run got a Pacer")
	}
}

// Time reported idle is not charged; the rest of a run's time is.
func TestPacerIdleNotCharged(t *testing.T) {
	c := defaultConfig()
	c.Duty = 0.001
	h := newHolder(t, c)
	for _, idle := range []time.Duration{time.Second, 0} {
		b := newBudget(duty(h))
		p := newPacer(b)
		p.mark = p.mark.Add(-time.Second) // the run has taken a second
		p.Idle(idle)
		p.finish()
		if d := b.delay(); (d == 0) != (idle > 0) {
			t.Fatalf("idle %v: delay %v", idle, d)
		}
	}
}

// A run that comes due while the budget is in debt waits only for the
// debt, not for another whole interval.
func TestDueRunWaitsOnlyForTheBudget(t *testing.T) {
	c := defaultConfig()
	c.Interval = time.Hour
	c.Duty = 0.5
	h := newHolder(t, c)
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	ran := make(chan struct{}, 1)
	clock := &fakeClock{timers: make(chan *fakeTimer, 8)}
	s := NewScheduler(h, Options{Clock: clock, Duty: duty(h)})
	s.budget.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s.budget.last = now
	s.budget.charge(budgetBurst + time.Second) // 1s of debt: 2s to repay
	must(t, s.Add(Worker[testConfig]{
		Name:     "audit",
		Interval: func(c testConfig) time.Duration { return c.Interval },
		Run:      func(context.Context, testConfig, *Pacer) error { ran <- struct{}{}; return nil },
	}))
	s.Start()
	defer s.Close()
	(<-clock.timers).c <- time.Now() // the interval passes, in debt
	tm := <-clock.timers
	if tm.d != 2*time.Second {
		t.Fatalf("waits %v after coming due in debt, want 2s", tm.d)
	}
	select {
	case <-ran:
		t.Fatal("ran while in debt")
	default:
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	tm.c <- time.Now()
	<-ran
}

// A duty outside the useful range is clamped: NaN or zero still repays a
// debt in bounded time, and no Duty function means no pacing.
func TestBudgetDutyBounds(t *testing.T) {
	for _, d := range []float64{0, -1, math.NaN()} {
		b := newBudget(func() float64 { return d })
		b.charge(budgetBurst + time.Millisecond)
		if got, want := b.delay(), time.Duration(float64(time.Millisecond)/MinDuty); got <= 0 || got > want {
			t.Fatalf("duty %v: delay %v, want (0, %v]", d, got, want)
		}
	}
	b := newBudget(nil)
	b.charge(time.Hour)
	if d := b.delay(); d != 0 {
		t.Fatalf("no Duty: delay %v", d)
	}
}
