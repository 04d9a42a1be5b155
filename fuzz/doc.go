// Package fuzz holds fuzz targets that cross package boundaries. Targets
// that exercise one package live beside it (cid.FuzzParseCID,
// wal.FuzzWALDecode, wal.FuzzReader, snapshot.FuzzSnapshotDecode,
// snapshot.FuzzLoad, store.FuzzStoreOps, store.FuzzRecovery); this one
// drives the public store API end to end: FuzzExportImport applies an
// arbitrary operation sequence, exports the store as a snapshot stream,
// imports it into a fresh store with another shard count and checks that
// both hold the same pairs.
//
// Run every target with scripts/fuzz (10 minutes each by default) or
// scripts/fuzz-ci (15 seconds each, as CI does). The seed corpus under
// testdata/fuzz runs in every plain go test.
package fuzz
