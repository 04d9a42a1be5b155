package bench

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunSmoke(t *testing.T) {
	res, err := Run(context.Background(), Workload{Shards: 4, Goroutines: 4, Duration: 50 * time.Millisecond, ReadPct: 50, KeySpace: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Reads == 0 || res.Writes == 0 || res.OpsPerSec() <= 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestRunRejectsBadWorkload(t *testing.T) {
	for _, w := range []Workload{{ReadPct: 101}, {ReadPct: -1}, {Goroutines: -1}, {Duration: -1}} {
		if _, err := Run(context.Background(), w); err == nil {
			t.Errorf("Run(%+v) accepted", w)
		}
	}
}
