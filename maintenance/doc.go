// Package maintenance runs background work driven by an immutable
// configuration that is replaced, never mutated. It is generic: the
// configuration is any value type T its user defines, and the work is
// functions its user supplies.
//
// A Holder[T] keeps the current value behind an atomic.Pointer; Update
// applies a function to the current value, checks the result with the
// validate function given to NewHolder and swaps it in with
// compare-and-swap, retrying if another update won the race, so
// concurrent updates never lose one another. Subscribers get a
// (coalescing) notification after each change.
//
// A Scheduler[T] runs named workers, each on its own goroutine. A worker
// reads the current value on every tick to decide its interval, so an
// interval change applies at once, without a restart. Trigger runs a
// worker now (for tests and operators). A panic inside a worker is
// recovered and counted as an error. Periodic runs share an allowance of
// running time, Options.Duty of one CPU: a run that comes due while the
// allowance is spent starts late, and a long pass calls Pacer.Pause
// between bounded steps to wait its turn, so background work cannot crowd
// out the foreground however short the intervals. Close cancels the
// context the workers run under and waits for them. ForEach gives workers
// a bounded pool to fan work out over shards.
//
// The package knows nothing about the store, the write-ahead log or
// snapshots. It imports only the standard library.
package maintenance
