package vfs

// RangeSyncer is implemented by files that can start write-back of a byte
// range without waiting for it, as Linux's sync_file_range(2) does. Long
// sequential writers (snapshots) use it to keep the amount of dirty data
// small, so an fsync of another file (the WAL) never queues behind
// hundreds of megabytes of their write-back. It makes nothing durable:
// an fsync is still needed.
type RangeSyncer interface {
	// SyncRange starts write-back of the dirty pages in [0, off) and
	// returns without waiting for it to finish.
	SyncRange(off int64) error
}
