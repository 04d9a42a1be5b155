package maintenance

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"
)

// ForEach calls fn(ctx, i) for i in [0, n) on at most parallelism
// goroutines (errgroup with SetLimit) and returns the errors joined: an
// error does not stop the other indexes. It stops handing out new indexes
// once ctx is cancelled (and then includes ctx.Err()).
func ForEach(ctx context.Context, n, parallelism int, fn func(ctx context.Context, i int) error) error {
	var (
		mu   sync.Mutex
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(max(1, parallelism))
	for i := 0; i < n && ctx.Err() == nil; i++ {
		g.Go(func() error {
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
