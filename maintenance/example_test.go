package maintenance_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cidstore/cidstore/maintenance"
)

// config is the immutable configuration the example's workers read.
type config struct {
	CompactEvery time.Duration
	Threshold    int
}

func (c config) validate() error {
	if c.Threshold < 1 {
		return errors.New("threshold must be positive")
	}
	return nil
}

func Example() {
	h, err := maintenance.NewHolder(config{CompactEvery: time.Minute, Threshold: 32}, config.validate)
	if err != nil {
		panic(err)
	}
	s := maintenance.NewScheduler(h, maintenance.Options{
		Duty: func() float64 { return 0.05 }, // periodic runs use at most 5% of one CPU
	})
	s.Add(maintenance.Worker[config]{
		Name:     "compact",
		Interval: func(c config) time.Duration { return c.CompactEvery },
		Run: func(ctx context.Context, c config, p *maintenance.Pacer) error {
			fmt.Println("compacting with threshold", c.Threshold)
			// A long pass works in bounded steps and calls p.Pause
			// between them to keep to Options.Duty.
			return p.Pause(ctx)
		},
	})
	s.Start()
	defer s.Close()

	// Replace the value: validated, swapped atomically, applied live.
	if _, err := h.Update(func(c config) config { c.Threshold = 64; return c }); err != nil {
		panic(err)
	}
	// An invalid value is rejected and the old one stays.
	_, err = h.Update(func(c config) config { c.Threshold = 0; return c })
	fmt.Println(err != nil, h.Load().Threshold)

	s.Trigger(context.Background(), "compact")
	// Output:
	// true 64
	// compacting with threshold 64
}
