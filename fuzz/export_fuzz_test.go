package fuzz

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// FuzzExportImport: every byte pair is one operation on a small key and
// value space (so value sets grow past the inline threshold and shrink
// again). The export of the result, imported into a fresh store with a
// different shard count, must hold exactly the same pairs; a damaged copy
// of the stream must import as ErrCorrupt or not at all.
func FuzzExportImport(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 1, 1, 3, 0}, uint16(5))
	f.Add(bytes.Repeat([]byte{0, 7, 0, 9, 0, 11}, 40), uint16(100))
	f.Add([]byte{}, uint16(0))
	inline2 := store.DefaultConfig()
	inline2.InlineValues = 2
	f.Fuzz(func(t *testing.T, ops []byte, flip uint16) {
		ctx := context.Background()
		src, err := store.Open("", store.Options{InMemory: true, Shards: 4, Config: &inline2})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		for i := 0; i+1 < len(ops) && i < 2000; i += 2 {
			k := cid.FromWords(0, 0, 1, uint64(ops[i+1]>>4)+1)
			v := cid.FromWords(0, 0, 2, uint64(ops[i+1]&15)+1)
			switch ops[i] % 4 {
			case 0, 1:
				err = src.Insert(k, v)
			case 2:
				err = src.Delete(k, v)
			case 3:
				err = src.DeleteKey(k)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		sum, err := src.Export(ctx, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Pairs != int64(src.Pairs()) {
			t.Fatalf("exported %d pairs of %d", sum.Pairs, src.Pairs())
		}
		dst, err := store.Open("", store.Options{InMemory: true, Shards: 16})
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		if _, err := dst.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
		same(t, src, dst)

		// A damaged stream imports as ErrCorrupt with nothing published,
		// or (if the flip hit a byte no check covers) as the same pairs.
		bad := bytes.Clone(buf.Bytes())
		bad[int(flip)%len(bad)] ^= 1 << (flip % 8)
		dmg, err := store.Open("", store.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		defer dmg.Close()
		if _, err := dmg.Import(ctx, bytes.NewReader(bad)); err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("damaged import: %v", err)
			}
			if dmg.Len() != 0 {
				t.Fatalf("damaged import published %d keys", dmg.Len())
			}
			return
		}
		same(t, src, dmg)
	})
}

func same(t *testing.T, a, b *store.Store) {
	t.Helper()
	type entry struct {
		k  cid.CID
		vs []cid.CID
	}
	var ea, eb []entry
	for k, vs := range a.All() {
		ea = append(ea, entry{k, vs})
	}
	for k, vs := range b.All() {
		eb = append(eb, entry{k, vs})
	}
	if !slices.EqualFunc(ea, eb, func(x, y entry) bool { return x.k == y.k && slices.Equal(x.vs, y.vs) }) {
		t.Fatalf("stores differ: %d keys vs %d", len(ea), len(eb))
	}
}
