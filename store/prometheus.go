package store

import (
	"bufio"
	"fmt"
	"io"
	"sort"
)

// WritePrometheus writes the store's Stats in the Prometheus text
// exposition format (version 0.0.4), every metric prefixed "cidstore_".
func (s *Store) WritePrometheus(w io.Writer) error {
	st := s.Stats()
	bw := bufio.NewWriter(w)
	metric := func(name, typ, help string, samples ...sample) {
		fmt.Fprintf(bw, "# HELP cidstore_%s %s\n# TYPE cidstore_%s %s\n", name, help, name, typ)
		for _, sm := range samples {
			fmt.Fprintf(bw, "cidstore_%s%s %v\n", name, sm.labels, sm.value)
		}
	}
	one := func(v any) sample { return sample{"", v} }
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	metric("keys", "gauge", "Keys in the store.", one(st.Keys))
	metric("pairs", "gauge", "Key-value pairs in the store.", one(st.Pairs))
	var shardKeys, shardPairs []sample
	for i, sh := range st.Shards {
		l := fmt.Sprintf("{shard=\"%d\"}", i)
		shardKeys = append(shardKeys, sample{l, sh.Keys})
		shardPairs = append(shardPairs, sample{l, sh.Pairs})
	}
	metric("shard_keys", "gauge", "Keys per shard.", shardKeys...)
	metric("shard_pairs", "gauge", "Pairs per shard.", shardPairs...)
	var tkeys, ttriples []sample
	for _, ix := range st.TripleIndexes {
		l := fmt.Sprintf("{index=%q}", ix.Index)
		tkeys = append(tkeys, sample{l, ix.Keys})
		ttriples = append(ttriples, sample{l, ix.Triples})
	}
	metric("triples", "gauge", "Triples in the store.", one(st.Triples))
	metric("triple_index_keys", "gauge", "Distinct keys per triple index.", tkeys...)
	metric("triple_index_triples", "gauge", "Triples per triple index (all three hold every triple).", ttriples...)
	metric("triple_ops_total", "counter", "Triple writes that changed the store since open.",
		sample{`{op="insert"}`, st.TripleOps.Inserts}, sample{`{op="delete"}`, st.TripleOps.Deletes},
		sample{`{op="batch"}`, st.TripleOps.Batches})
	metric("ops_total", "counter", "Write operations that changed the store since open.",
		sample{`{op="insert"}`, st.Ops.Inserts}, sample{`{op="delete"}`, st.Ops.Deletes},
		sample{`{op="delete_key"}`, st.Ops.DeleteKeys}, sample{`{op="batch"}`, st.Ops.Batches})
	metric("persistent", "gauge", "1 if the store has a write-ahead log.", one(b2i(st.Persistent)))
	metric("read_only", "gauge", "1 after a write failure made the store read-only.", one(b2i(st.ReadOnly != "")))
	if st.Persistent {
		metric("wal_appends_total", "counter", "WAL records appended since open.", one(st.WAL.Appends))
		metric("wal_appended_bytes_total", "counter", "WAL payload bytes appended since open.", one(st.WAL.AppendedBytes))
		metric("wal_written_bytes_total", "counter", "Bytes written to WAL segments since open.", one(st.WAL.WrittenBytes))
		metric("wal_fsyncs_total", "counter", "WAL fsyncs since open.", one(st.WAL.Fsyncs))
		metric("wal_segments", "gauge", "WAL segment files.", one(st.WAL.Segments))
		metric("wal_last_lsn", "gauge", "Last appended LSN.", one(st.WAL.LastLSN))
		metric("wal_durable_lsn", "gauge", "Last fsynced LSN.", one(st.WAL.DurableLSN))
		metric("wal_preallocated_segments_total", "counter", "WAL segments started on a zero-filled spare.", one(st.WAL.PreallocatedSegments))
		// Records per fsync as a cumulative histogram with power-of-two
		// upper bounds. The log's last bucket has no upper bound, so only
		// +Inf counts it.
		fmt.Fprintf(bw, "# HELP cidstore_wal_group_size Records made durable per fsync.\n# TYPE cidstore_wal_group_size histogram\n")
		var cum, sum uint64
		last := len(st.WAL.RecordsPerFsync) - 1
		for i, n := range st.WAL.RecordsPerFsync {
			cum += n
			sum += n << i // lower bound of the bucket: an underestimate
			if i < last {
				fmt.Fprintf(bw, "cidstore_wal_group_size_bucket{le=\"%d\"} %d\n", uint64(1)<<(i+1)-1, cum)
			}
		}
		fmt.Fprintf(bw, "cidstore_wal_group_size_bucket{le=\"+Inf\"} %d\ncidstore_wal_group_size_sum %d\ncidstore_wal_group_size_count %d\n", cum, sum, cum)
		metric("checkpoints_total", "counter", "Checkpoints written since open.", one(st.Checkpoints.Count))
		metric("checkpoint_last_seconds", "gauge", "Duration of the last checkpoint.", one(st.Checkpoints.LastDuration.Seconds()))
		metric("checkpoint_last_bytes", "gauge", "Size of the last snapshot.", one(st.Checkpoints.LastBytes))
		metric("checkpoint_last_lsn", "gauge", "Cut LSN of the last snapshot.", one(st.Checkpoints.LastLSN))
		metric("recovery_seconds", "gauge", "Time Open spent recovering.", one(st.Recovery.Duration.Seconds()))
		metric("recovery_wal_records", "gauge", "WAL records replayed at open.", one(st.Recovery.Records))
	}
	var runs, errs, last, paused []sample
	for _, w := range st.Workers {
		l := fmt.Sprintf("{worker=%q}", w.Name)
		runs = append(runs, sample{l, w.Runs})
		errs = append(errs, sample{l, w.Errors})
		last = append(last, sample{l, w.LastDuration.Seconds()})
		paused = append(paused, sample{l, w.Paused.Seconds()})
	}
	metric("worker_runs_total", "counter", "Maintenance worker runs.", runs...)
	metric("worker_errors_total", "counter", "Maintenance worker runs that failed.", errs...)
	metric("worker_last_seconds", "gauge", "Duration of each worker's last run.", last...)
	metric("worker_paused_seconds_total", "counter", "Time workers waited to keep to WorkerDuty.", paused...)
	m := st.Maintenance
	metric("scrub_failures_total", "counter", "Scrub passes that found damage.", one(m.ScrubFailures))
	types := make([]int, 0, len(m.ScrubRecordTypes))
	for t := range m.ScrubRecordTypes {
		types = append(types, int(t))
	}
	sort.Ints(types)
	var byType []sample
	for _, t := range types {
		byType = append(byType, sample{fmt.Sprintf("{type=\"%d\"}", t), m.ScrubRecordTypes[uint8(t)]})
	}
	metric("scrub_records", "gauge", "WAL records per type verified by the last scrub.", byType...)
	metric("audit_repairs_total", "counter", "Shard indexes rebuilt by the audit.", one(m.AuditRepairs))
	metric("compacted_total", "counter", "Value sets converted back to inline.", one(m.Compacted))
	metric("gc_removed_total", "counter", "Obsolete files removed.", one(m.GCRemoved))
	return bw.Flush()
}

type sample struct {
	labels string
	value  any
}
