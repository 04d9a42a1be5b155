package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cidstore/cidstore/maintenance"
	"github.com/cidstore/cidstore/wal"
)

func TestUpdateConfig(t *testing.T) {
	s := openDir(t, t.TempDir(), Options{})
	defer s.Close()
	if err := s.UpdateConfig(func(c Config) Config { c.SnapshotsKept = 0; return c }); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("invalid update = %v", err)
	}
	if s.Config().SnapshotsKept != 2 {
		t.Fatal("invalid update changed the config")
	}
	must(t, s.UpdateConfig(func(c Config) Config {
		c.Sync, c.InlineValues = SyncNever, 2
		return c
	}))
	if c := s.Config(); c.Sync != SyncNever || c.InlineValues != 2 {
		t.Fatalf("config %+v", c)
	}
	// Writes go on under the new policy; sets above 2 values become trees.
	for v := uint64(1); v <= 5; v++ {
		must(t, s.Insert(w(1), w(v)))
	}
	if s.Count(w(1)) != 5 {
		t.Fatal("insert under new config")
	}
	if _, err := Open("", Options{Config: &Config{}}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Open with an invalid Config = %v", err)
	}
}

func TestCheckpointWorkerBySize(t *testing.T) {
	c := DefaultConfig()
	c.CheckpointWALBytes = 1 << 20
	c.CheckpointInterval = 0
	s := openDir(t, t.TempDir(), Options{Config: &c})
	defer s.Close()
	ctx := context.Background()
	must(t, s.TriggerWorker(ctx, WorkerCheckpoint))
	if s.Stats().Checkpoints.Count != 0 {
		t.Fatal("checkpoint before the WAL reached the threshold")
	}
	pairs := make([]Pair, 1000)
	for round := uint64(0); s.walSinceSnapshot() < 1<<20; round++ {
		for j := range pairs {
			pairs[j] = Pair{benchKey(round*1000 + uint64(j)), w(1)}
		}
		must(t, s.InsertBatch(pairs))
	}
	must(t, s.TriggerWorker(ctx, WorkerCheckpoint))
	if s.Stats().Checkpoints.Count != 1 || s.walSinceSnapshot() >= 1<<20 {
		t.Fatalf("checkpoints %+v, WAL since snapshot %d", s.Stats().Checkpoints, s.walSinceSnapshot())
	}
}

func TestScrubWorkerFindsDamage(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, Options{SegmentSize: wal.MinSegmentSize})
	defer s.Close()
	fill(t, s, model{}, 0, 200)
	ctx := context.Background()
	must(t, s.Checkpoint(ctx))
	fill(t, s, model{}, 200, 400)              // closed segments after the snapshot
	for s.Stats().Maintenance.ScrubRuns == 0 { // one pass: segments, then snapshots
		must(t, s.TriggerWorker(ctx, WorkerScrub))
	}
	st := s.Stats().Maintenance
	if st.ScrubRecords == 0 || st.ScrubRecordTypes[opAdd] != st.ScrubRecords || st.ScrubFailures != 0 || st.ScrubSnapshots != 1 {
		t.Fatalf("clean scrub %+v", st)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	if len(segs) < 2 {
		t.Fatalf("need a closed segment, have %v", segs)
	}
	data, err := os.ReadFile(segs[0])
	must(t, err)
	data[wal.SegmentHeaderSize+wal.HeaderSize+3] ^= 0x08
	must(t, os.WriteFile(segs[0], data, 0o600))
	var err2 error
	for i := 0; i < 100 && err2 == nil; i++ {
		err2 = s.TriggerWorker(ctx, WorkerScrub)
	}
	if !errors.Is(err2, ErrCorrupt) {
		t.Fatalf("scrub after bit flip = %v", err2)
	}
	if s.Stats().Maintenance.ScrubFailures != 1 {
		t.Fatal("scrub failure not counted")
	}
	must(t, s.Insert(w(9999), w(1))) // writes go on
}

func TestWorkersAndMetrics(t *testing.T) {
	s := openDir(t, t.TempDir(), Options{})
	defer s.Close()
	fill(t, s, model{}, 0, 300)
	ctx := context.Background()
	for _, name := range []WorkerName{WorkerCheckpoint, WorkerScrub, WorkerCompact, WorkerAudit, WorkerGC} {
		must(t, s.TriggerWorker(ctx, name))
	}
	st := s.Stats()
	if len(st.Workers) != 5 || st.Maintenance.AuditRepairs != 0 {
		t.Fatalf("workers %+v maintenance %+v", st.Workers, st.Maintenance)
	}
	for _, ws := range st.Workers {
		if ws.Runs != 1 || ws.Errors != 0 {
			t.Fatalf("worker %+v", ws)
		}
	}
	var buf bytes.Buffer
	must(t, s.WritePrometheus(&buf))
	out := buf.String()
	for _, want := range []string{"cidstore_keys 97", "cidstore_wal_fsyncs_total", `cidstore_worker_runs_total{worker="audit"} 1`,
		"cidstore_wal_group_size_bucket{le=\"+Inf\"}", "cidstore_wal_preallocated_segments_total 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The last bucket of the log's histogram is open-ended: only +Inf
	// stands for it, so no finite bound reaches 2^31 records.
	if strings.Contains(out, `le="4294967295"`) || !strings.Contains(out, `le="2147483647"`) {
		t.Errorf("group size buckets end wrongly:\n%s", out)
	}
	mem := openMem(t, Options{})
	if err := mem.TriggerWorker(ctx, WorkerCheckpoint); !errors.Is(err, maintenance.ErrUnknownWorker) {
		t.Fatalf("in-memory checkpoint worker: %v", err)
	}
	must(t, mem.TriggerWorker(ctx, WorkerAudit))
}

// Close while every worker is busy returns promptly (goleak checks that
// nothing is left running).
func TestCloseWithBusyWorkers(t *testing.T) {
	c := DefaultConfig()
	c.AuditInterval, c.CompactInterval, c.ScrubInterval, c.GCInterval = 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
	c.CheckpointWALBytes, c.CheckpointInterval = 1<<20, time.Second
	s := openDir(t, t.TempDir(), Options{Config: &c, SegmentSize: 64 << 10})
	fill(t, s, model{}, 0, 3000)
	done := make(chan struct{})
	go func() {
		for i := uint64(0); ; i++ {
			if s.Insert(benchKey(i), w(1)) != nil {
				close(done)
				return
			}
		}
	}()
	must(t, s.Checkpoint(context.Background()))
	must(t, s.Close())
	<-done
}

// Options.Config.InlineValues is the threshold in force.
func TestInlineValuesFromConfig(t *testing.T) {
	for _, n := range []int{8, 5} {
		s := openDir(t, "", Options{Config: withConfig(func(c *Config) { c.InlineValues = n })})
		if got := s.Config().InlineValues; got != n {
			t.Fatalf("Config().InlineValues = %d, want %d", got, n)
		}
		must(t, s.Close())
	}
}
