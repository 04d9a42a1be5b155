package maintenance

import (
	"context"
	"errors"
	"sync"
)

// ForEach calls fn(ctx, i) for i in [0, n) on at most parallelism
// goroutines and returns the errors joined. It stops handing out new
// indexes once ctx is cancelled (and then includes ctx.Err()).
func ForEach(ctx context.Context, n, parallelism int, fn func(ctx context.Context, i int) error) error {
	parallelism = max(1, min(parallelism, n))
	var (
		mu   sync.Mutex
		errs []error
		next int
		wg   sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for g := 0; g < parallelism; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, ok := take(); ok; i, ok = take() {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
