package vfs

// DataSyncer is implemented by files that can commit their data without
// the metadata that reading it back does not need, as fdatasync(2) does:
// after an overwrite of blocks that are already allocated, only the data
// and a cache flush reach the disk, not a journal commit for the
// modification time. The write-ahead log overwrites preallocated segment
// files this way.
type DataSyncer interface {
	// Datasync commits the file's data, and the metadata needed to read
	// it (such as its size), to stable storage.
	Datasync() error
}

// SyncData commits f's data to stable storage: with Datasync when f
// implements DataSyncer, otherwise with Sync.
func SyncData(f File) error {
	if d, ok := f.(DataSyncer); ok {
		return d.Datasync()
	}
	return f.Sync()
}
