package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestExportImport(t *testing.T) {
	ctx := context.Background()
	src := openDir(t, t.TempDir(), Options{Shards: 4})
	defer src.Close()
	m := model{}
	fill(t, src, m, 0, 2000)
	var buf bytes.Buffer
	sum, err := src.Export(ctx, &buf)
	must(t, err)
	if sum.Pairs != int64(src.Pairs()) {
		t.Fatalf("exported %d pairs of %d", sum.Pairs, src.Pairs())
	}

	mem := openMem(t, Options{Shards: 2})
	if _, err := mem.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	checkAll(t, mem, m, 0, 0)
	if _, err := mem.Import(ctx, bytes.NewReader(buf.Bytes())); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("second Import = %v, want ErrNotEmpty", err)
	}

	// Into a persistent store: durable through a checkpoint, and writes
	// after it replay on top.
	dir := t.TempDir()
	dst := openDir(t, dir, Options{})
	if _, err := dst.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	must(t, dst.Insert(w(5000), w(1)))
	m.add(w(5000), w(1))
	must(t, dst.Close())
	re := openDir(t, dir, Options{})
	defer re.Close()
	checkAll(t, re, m, 0, 1)

	// A damaged stream publishes nothing.
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)/3] ^= 1
	empty := openMem(t, Options{})
	if _, err := empty.Import(ctx, bytes.NewReader(bad)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Import of a damaged stream = %v", err)
	}
	if empty.Len() != 0 {
		t.Fatalf("damaged import published %d keys", empty.Len())
	}
}

// Import into a store that was checkpointed and then emptied is durable:
// its pairs are in no WAL record, so the checkpoint it ends with must not
// be skipped as "nothing new".
func TestImportAfterCheckpointIsDurable(t *testing.T) {
	src := openDir(t, "", Options{})
	must(t, src.Insert(w(1), w(2)))
	var buf bytes.Buffer
	if _, err := src.Export(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	must(t, src.Close())

	dir := t.TempDir()
	s := openDir(t, dir, Options{})
	must(t, s.Insert(w(7), w(8)))
	must(t, s.DeleteKey(w(7)))
	must(t, s.Checkpoint(context.Background()))
	if _, err := s.Import(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	r := openDir(t, dir, Options{})
	defer r.Close()
	if !r.Contains(w(1), w(2)) || r.Len() != 1 {
		t.Fatalf("after reopen: len %d, contains %v", r.Len(), r.Contains(w(1), w(2)))
	}
}
