package snapshot

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the file loader and the stream reader.
// Neither may panic; each must succeed or fail with ErrCorrupt; when both
// succeed they must deliver the same entries.
func FuzzLoad(f *testing.F) {
	seeds := []dataset{
		nil,
		make(dataset, 2),
		genDataset(41, 1, 3, func(i int) int { return 1 + i }, false),
		genDataset(42, 2, 6, func(i int) int { return 1 + i*7 }, false),
		genDataset(43, 1, 4, func(i int) int { return 20 }, true),
	}
	for _, d := range seeds {
		data, _ := encode(f, d, 3, 256)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fileC, streamC collector
		h1, s1, err1 := loadBytes(data, "fuzz.snap", 1, fileC.fn)
		if err1 != nil && !errors.Is(err1, ErrCorrupt) {
			t.Fatalf("load: %v", err1)
		}
		h2, s2, err2 := Read(context.Background(), bytes.NewReader(data), streamC.fn)
		if err2 != nil && !errors.Is(err2, ErrCorrupt) {
			t.Fatalf("Read: %v", err2)
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("load and Read disagree: %v / %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if h1 != h2 || s1 != s2 || s1.Bytes != int64(len(data)) {
			t.Fatalf("load %+v %+v, Read %+v %+v", h1, s1, h2, s2)
		}
		m1, m2 := joinByKey(fileC.got), joinByKey(streamC.got)
		pairs := 0
		for _, v := range m1 {
			pairs += len(v)
		}
		if len(m1) != len(m2) || int64(pairs) != s1.Pairs {
			t.Fatalf("load %d keys, Read %d; %d pairs, summary %d", len(m1), len(m2), pairs, s1.Pairs)
		}
		if !sameEntries(m1, m2) {
			t.Fatal("load and Read deliver other values for a key")
		}
	})
}
