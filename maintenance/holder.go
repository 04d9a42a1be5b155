package maintenance

import (
	"sync"
	"sync/atomic"
)

// Holder holds an immutable value of type T, typically a configuration.
// Load is a single atomic load; Update swaps in a new value with
// compare-and-swap after checking it with the validate function given to
// NewHolder. All methods are safe for concurrent use. T should be a plain
// value (no pointers, slices or maps that a caller might mutate after
// handing it over), so that a loaded value never changes under its reader.
type Holder[T any] struct {
	cur      atomic.Pointer[T]
	validate func(T) error

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewHolder returns a Holder with v, which validate must accept. A nil
// validate accepts every value.
func NewHolder[T any](v T, validate func(T) error) (*Holder[T], error) {
	if validate == nil {
		validate = func(T) error { return nil }
	}
	if err := validate(v); err != nil {
		return nil, err
	}
	h := &Holder[T]{validate: validate, subs: map[chan struct{}]struct{}{}}
	h.cur.Store(&v)
	return h, nil
}

// Load returns the current value.
func (h *Holder[T]) Load() T { return *h.cur.Load() }

// Update replaces the current value with fn(current). fn must be a pure
// function of its argument: when another update wins the race, fn runs
// again on the newer value. A result that validate rejects is not stored:
// the current value stays in force and Update returns validate's error.
// On success Update returns the new value and notifies subscribers.
func (h *Holder[T]) Update(fn func(T) T) (T, error) {
	for {
		old := h.cur.Load()
		next := fn(*old)
		if err := h.validate(next); err != nil {
			return *old, err
		}
		if h.cur.CompareAndSwap(old, &next) {
			h.notify()
			return next, nil
		}
	}
}

// Subscribe returns a channel that receives a value after the value
// changes (several quick changes may coalesce into one notification; read
// the current value with Load) and a function that ends the subscription.
func (h *Holder[T]) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

func (h *Holder[T]) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default: // a notification is already pending
		}
	}
}
