package snapshot

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// parallel calls work for every index in [0, n) on workers goroutines
// (errgroup), each of which first makes its own worker state with open (a
// codec and its buffers, reused for every index it takes) and hands it to
// done when it stops. Indexes are taken in order. At the first error the
// context the calls get is cancelled, no new index is taken, and that
// error is returned.
func parallel[W any](ctx context.Context, n, workers int, open func() (W, error),
	work func(ctx context.Context, w W, i int) error, done func(W)) error {
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range workers {
		g.Go(func() error {
			w, err := open()
			if err != nil {
				return err
			}
			defer done(w)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := work(gctx, w, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}
