package maintenance

import (
	"sync"
	"sync/atomic"
)

// Holder holds the current Config. Load is a single atomic load; Update
// swaps in a new value with compare-and-swap. All methods are safe for
// concurrent use.
type Holder struct {
	cur atomic.Pointer[Config]

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewHolder returns a Holder with c, which must be valid.
func NewHolder(c Config) (*Holder, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	h := &Holder{subs: map[chan struct{}]struct{}{}}
	h.cur.Store(&c)
	return h, nil
}

// Load returns the current Config.
func (h *Holder) Load() Config { return *h.cur.Load() }

// Update replaces the current Config with fn(current). fn must be a pure
// function of its argument: when another update wins the race, fn runs
// again on the newer value. An invalid result is rejected, the current
// Config stays in force and the error wraps ErrInvalidConfig. On success
// Update returns the new Config and notifies subscribers.
func (h *Holder) Update(fn func(Config) Config) (Config, error) {
	for {
		old := h.cur.Load()
		next := fn(*old)
		if err := next.Validate(); err != nil {
			return *old, err
		}
		if h.cur.CompareAndSwap(old, &next) {
			h.notify()
			return next, nil
		}
	}
}

// Subscribe returns a channel that receives a value after config changes
// (several quick changes may coalesce into one notification; read the
// current value with Load) and a function that ends the subscription.
func (h *Holder) Subscribe() (<-chan struct{}, func()) {
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

func (h *Holder) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default: // a notification is already pending
		}
	}
}
