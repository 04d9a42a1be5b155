package maintenance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

var (
	// ErrUnknownWorker is returned by Trigger for a name no worker has.
	ErrUnknownWorker = errors.New("maintenance: unknown worker")
	// ErrStopped is returned by Trigger after Close.
	ErrStopped = errors.New("maintenance: scheduler stopped")
)

// Worker is one kind of background work, configured by a value of type T
// (the Scheduler's Holder holds the current one).
type Worker[T any] struct {
	// Name identifies the worker in Trigger, Stats and logs.
	Name string
	// Interval returns the wait between runs under c. 0 means the worker
	// runs only when triggered.
	Interval func(c T) time.Duration
	// Run does one pass under the value current when it starts. It must
	// return promptly once ctx is cancelled. A long pass calls p.Pause
	// between bounded steps so that it keeps to Options.Duty; p is nil
	// for a triggered run, which is not paced (Pause on nil is fine).
	Run func(ctx context.Context, c T, p *Pacer) error
}

// WorkerStats describe one worker's runs.
type WorkerStats struct {
	Name         string
	Runs         int64         // completed runs, failed ones included
	Errors       int64         // runs that returned an error or panicked
	LastRun      time.Time     // start of the last completed run
	LastDuration time.Duration // duration of the last completed run
	// Paused is the total time runs spent waiting for the shared running
	// time allowance (Options.Duty), inside Pause or before starting.
	Paused    time.Duration
	LastError string // error of the last failed run
}

// Options configure a Scheduler.
type Options struct {
	Logger *slog.Logger // nil discards
	Clock  Clock        // nil means RealClock
	// Duty returns the share of wall-clock time the periodic runs may
	// spend running, together and averaged over time: 0.05 lets them use
	// a twentieth of one CPU (see Pacer). It is called as the allowance is
	// charged, so a change applies at once. nil, or a value of 1 or more,
	// turns pacing off; a value below MinDuty (or NaN) counts as MinDuty.
	Duty func() float64
}

// Scheduler runs workers, each on its own goroutine, until Close. Workers
// read their configuration, a value of type T, from a Holder.
type Scheduler[T any] struct {
	h      *Holder[T]
	log    *slog.Logger
	clock  Clock
	budget *budget
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[string]*worker[T]
	started bool
}

type worker[T any] struct {
	Worker[T]
	trigger chan chan error
	stats   WorkerStats // guarded by Scheduler.mu
}

// NewScheduler returns a Scheduler reading its workers' configuration
// from h.
func NewScheduler[T any](h *Holder[T], o Options) *Scheduler[T] {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler[T]{h: h, log: o.Logger, clock: o.Clock, budget: newBudget(o.Duty), ctx: ctx, cancel: cancel,
		workers: map[string]*worker[T]{}}
}

// Add registers a worker. Workers added after Start begin at once.
func (s *Scheduler[T]) Add(w Worker[T]) error {
	if w.Name == "" || w.Run == nil {
		return errors.New("maintenance: worker needs a name and a Run function")
	}
	if w.Interval == nil {
		w.Interval = func(T) time.Duration { return 0 }
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.workers[w.Name]; dup {
		return fmt.Errorf("maintenance: worker %q added twice", w.Name)
	}
	if s.ctx.Err() != nil {
		return ErrStopped
	}
	wk := &worker[T]{Worker: w, trigger: make(chan chan error), stats: WorkerStats{Name: w.Name}}
	s.workers[w.Name] = wk
	if s.started {
		s.launch(wk)
	}
	return nil
}

// Start starts the workers' goroutines.
func (s *Scheduler[T]) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.ctx.Err() != nil {
		return
	}
	s.started = true
	for _, wk := range s.workers {
		s.launch(wk)
	}
}

func (s *Scheduler[T]) launch(wk *worker[T]) {
	s.wg.Add(1)
	go s.loop(wk)
}

// loop runs one worker: wait for its interval (recomputed whenever the
// configuration changes), a trigger or the end. A periodic run also waits until
// the workers' shared running-time allowance is out of debt; the wait
// stays interruptible by triggers, config changes and Close.
func (s *Scheduler[T]) loop(wk *worker[T]) {
	defer s.wg.Done()
	changed, unsubscribe := s.h.Subscribe()
	defer unsubscribe()
	var dueSince time.Time // when the interval passed, while the run waits for the budget
	for {
		var tick <-chan time.Time
		var t Timer
		if d := wk.Interval(s.h.Load()); d > 0 {
			if !dueSince.IsZero() {
				d = s.budget.delay() // due already: only the budget is waited for
			}
			t = s.clock.NewTimer(d)
			tick = t.C()
		} else {
			dueSince = time.Time{} // turned off: no run is due any more
		}
		select {
		case <-s.ctx.Done():
			stopTimer(t)
			return
		case <-changed:
			stopTimer(t) // recompute the interval under the new value
		case <-tick:
			if s.budget.delay() > 0 {
				if dueSince.IsZero() {
					dueSince = time.Now()
				}
				continue // wait until the allowance is out of debt
			}
			if !dueSince.IsZero() {
				s.addPaused(wk, time.Since(dueSince))
				dueSince = time.Time{}
			}
			s.run(wk, newPacer(s.budget))
		case reply := <-wk.trigger:
			stopTimer(t)
			dueSince = time.Time{} // the triggered run stands for the due one
			reply <- s.run(wk, nil)
		}
	}
}

func (s *Scheduler[T]) addPaused(wk *worker[T], d time.Duration) {
	s.mu.Lock()
	wk.stats.Paused += d
	s.mu.Unlock()
}

func stopTimer(t Timer) {
	if t != nil {
		t.Stop()
	}
}

// run performs one pass of wk, paced by p (nil: not paced), recovering a
// panic as an error.
func (s *Scheduler[T]) run(wk *worker[T], p *Pacer) (err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("maintenance: worker %s panicked: %v\n%s", wk.Name, r, debug.Stack())
		}
		paused := p.finish()
		d := time.Since(start)
		s.mu.Lock()
		wk.stats.Runs++
		wk.stats.LastRun, wk.stats.LastDuration = start, d
		wk.stats.Paused += paused
		if err != nil {
			wk.stats.Errors++
			wk.stats.LastError = err.Error()
		}
		s.mu.Unlock()
		if err != nil && s.ctx.Err() == nil {
			s.log.Error("cidstore: maintenance worker failed", "worker", wk.Name, "err", err, "duration", d)
		} else {
			s.log.Debug("cidstore: maintenance worker ran", "worker", wk.Name, "duration", d)
		}
	}()
	return wk.Run(s.ctx, s.h.Load(), p)
}

// Trigger runs the named worker now, on its own goroutine, and returns the
// run's error. It waits for a run in progress to finish first.
func (s *Scheduler[T]) Trigger(ctx context.Context, name string) error {
	s.mu.Lock()
	wk, ok := s.workers[name]
	started := s.started
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownWorker, name)
	}
	if !started {
		return fmt.Errorf("maintenance: Trigger(%q) before Start", name)
	}
	reply := make(chan error, 1)
	select {
	case wk.trigger <- reply:
	case <-s.ctx.Done():
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns every worker's statistics, sorted by name.
func (s *Scheduler[T]) Stats() []WorkerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WorkerStats, 0, len(s.workers))
	for _, wk := range s.workers {
		out = append(out, wk.stats)
	}
	slices.SortFunc(out, func(a, b WorkerStats) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Close cancels the workers' context and waits for every worker
// goroutine to return. It is idempotent.
func (s *Scheduler[T]) Close() {
	s.cancel()
	s.wg.Wait()
}
