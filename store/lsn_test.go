package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// A store whose WAL was crafted at the top of the LSN range never
// acknowledges a write under an LSN that wrapped around: at wal.MaxLSN it
// opens and reads but refuses writes with ErrLSNExhausted, and a log at
// LSN 2^64-1 does not open.
func TestLSNLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lsn     uint64
		openErr bool
	}{
		{"at MaxLSN", wal.MaxLSN, false},
		{"at 2^64-1", math.MaxUint64, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(Layout{dir}.WAL(), 0o700); err != nil {
				t.Fatal(err)
			}
			// A snapshot (empty) covers every LSN before the record.
			if err := os.MkdirAll(Layout{dir}.Snapshots(), 0o700); err != nil {
				t.Fatal(err)
			}
			cut := tc.lsn - 1
			if _, err := snapshot.WriteFile(context.Background(), vfs.Default, Layout{dir}.Snapshot(cut),
				snapshot.Header{LSN: cut, Parts: 1}, []snapshot.Part{func(func(cid.CID, []cid.CID) bool) {}}); err != nil {
				t.Fatal(err)
			}
			k, v := w(1), w(2)
			seg := wal.AppendRecord([]byte("CIDWAL\x01\x00"), tc.lsn, opAdd, append(k[:], v[:]...))
			name := fmt.Sprintf("%020d.wal", tc.lsn)
			if err := os.WriteFile(filepath.Join(dir, walDir, name), seg, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{})
			if tc.openErr {
				if !errors.Is(err, ErrLSNExhausted) {
					if err == nil {
						s.Close()
					}
					t.Fatalf("Open: %v, want ErrLSNExhausted", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !s.Contains(w(1), w(2)) {
				t.Error("the crafted record was not recovered")
			}
			if err := s.Insert(w(3), w(4)); !errors.Is(err, ErrLSNExhausted) {
				t.Fatalf("Insert: %v, want ErrLSNExhausted", err)
			}
		})
	}
}
