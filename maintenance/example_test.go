package maintenance_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cidstore/cidstore/maintenance"
)

func Example() {
	h, err := maintenance.NewHolder(maintenance.Default())
	if err != nil {
		panic(err)
	}
	s := maintenance.NewScheduler(h, maintenance.Options{})
	s.Add(maintenance.Worker{
		Name:     "compact",
		Interval: func(c maintenance.Config) time.Duration { return c.CompactInterval },
		Run: func(ctx context.Context, c maintenance.Config, p *maintenance.Pacer) error {
			fmt.Println("compacting with inline threshold", c.InlineValues)
			// A long pass works in bounded steps and calls p.Pause
			// between them to keep to Config.WorkerDuty.
			return p.Pause(ctx)
		},
	})
	s.Start()
	defer s.Close()

	// Replace the config: validated, swapped atomically, applied live.
	if _, err := h.Update(func(c maintenance.Config) maintenance.Config {
		c.InlineValues = 64
		return c
	}); err != nil {
		panic(err)
	}
	// An invalid value is rejected and the old one stays.
	_, err = h.Update(func(c maintenance.Config) maintenance.Config { c.SnapshotsKept = 0; return c })
	fmt.Println(err != nil, h.Load().SnapshotsKept)

	s.Trigger(context.Background(), "compact")
	// Output:
	// true 2
	// compacting with inline threshold 64
}
