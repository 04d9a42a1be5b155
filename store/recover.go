package store

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// replayChunk is how many operations the WAL reader hands a replay worker
// at a time.
const replayChunk = 4096

// lsnOp is an operation with the LSN of its record.
type lsnOp struct {
	lsn uint64
	op
}

// replay rebuilds the in-memory state from the WAL. One goroutine reads
// and decodes records in LSN order; operations are routed by shard to a
// fixed set of workers (shard i goes to worker i mod W), so each shard's
// operations, and therefore each key's, are applied in log order while
// different shards load in parallel.
func (s *Store) replay() error {
	start := time.Now()
	workers := min(runtime.GOMAXPROCS(0), len(s.shards))
	chans := make([]chan []lsnOp, workers)
	pending := make([][]lsnOp, workers)
	var wg sync.WaitGroup
	for w := range chans {
		chans[w] = make(chan []lsnOp, 4)
		wg.Add(1)
		go func(ch <-chan []lsnOp) {
			defer wg.Done()
			for chunk := range ch {
				for _, o := range chunk {
					i := s.shardOf(o.key)
					sh := s.shards[i]
					sh.Lock()
					apply(sh, o.op)
					sh.SetLSN(o.lsn)
					sh.Unlock()
				}
			}
		}(chans[w])
	}
	var records, ops int64
	err := s.wal.Replay(1, func(lsn uint64, typ uint8, payload []byte) error {
		records++
		err := decodeOps(typ, payload, func(o op) {
			ops++
			w := s.shardOf(o.key) % workers
			if pending[w] == nil {
				pending[w] = make([]lsnOp, 0, replayChunk)
			}
			pending[w] = append(pending[w], lsnOp{lsn, o})
			if len(pending[w]) == replayChunk {
				chans[w] <- pending[w]
				pending[w] = nil
			}
		})
		if err != nil {
			return fmt.Errorf("%w: WAL record %d: %v", ErrCorrupt, lsn, err)
		}
		return nil
	})
	for w, ch := range chans {
		if len(pending[w]) > 0 {
			ch <- pending[w]
		}
		close(ch)
	}
	wg.Wait()
	if err != nil {
		return err
	}
	s.recovery = RecoveryStats{
		Duration:  time.Since(start),
		Records:   records,
		Ops:       ops,
		TornBytes: s.wal.RepairReport().TornBytes,
	}
	if records > 0 || s.recovery.TornBytes > 0 {
		s.opts.Logger.Info("cidstore: recovered", "dir", s.dir, "records", records, "ops", ops,
			"keys", s.Len(), "torn_bytes", s.recovery.TornBytes, "duration", s.recovery.Duration)
	}
	return nil
}

// Recovery returns what Open recovered from disk.
func (s *Store) Recovery() RecoveryStats { return s.recovery }
