package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// flipFile flips one bit of the file at path at offset off (negative:
// from the end).
func flipFile(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	if off < 0 {
		off += int64(len(data))
	}
	data[off] ^= 0x10
	must(t, os.WriteFile(path, data, 0o600))
}

func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	must(t, err)
	return segs
}

// Damage reported by the WAL or the snapshot layer matches the store's
// ErrCorrupt and the layer's own sentinel, and its text is the layer's,
// not prefixed by another layer's.
func TestCorruptErrorsWrappedOnce(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, Options{})
	m := model{}
	fill(t, s, m, 0, 50)
	var buf bytes.Buffer
	_, err := s.Export(context.Background(), &buf)
	must(t, err)
	must(t, s.Close())
	flipFile(t, walSegments(t, dir)[0], 8+20)

	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, wal.ErrCorrupt) || errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("Open of a damaged WAL = %v, want ErrCorrupt and wal.ErrCorrupt", err)
	}
	if n := strings.Count(err.Error(), "corrupt"); n != 1 {
		t.Fatalf("Open error says corrupt %d times: %v", n, err)
	}

	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)/2] ^= 1
	mem := openMem(t, Options{})
	_, err = mem.Import(context.Background(), bytes.NewReader(bad))
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("Import of a damaged stream = %v, want ErrCorrupt and snapshot.ErrCorrupt", err)
	}
	if !strings.HasPrefix(err.Error(), "snapshot: corrupt snapshot: <stream>") {
		t.Fatalf("Import error text %q", err)
	}
}

// craftSnapshot writes the snapshot file named for cut LSN name, whose
// header says cut LSN lsn, holding m (which may hold zero CIDs).
func craftSnapshot(t *testing.T, dir string, name, lsn uint64, m model) string {
	t.Helper()
	keys := slices.SortedFunc(maps.Keys(m), cid.Compare)
	part := func(yield func(cid.CID, []cid.CID) bool) {
		for _, k := range keys {
			if !yield(k, m.values(k)) {
				return
			}
		}
	}
	path := filepath.Join(dir, snapDir, snapshot.Name(name))
	_, err := snapshot.WriteFile(context.Background(), vfs.Default, path,
		snapshot.Header{LSN: lsn, Parts: 1}, []snapshot.Part{part})
	must(t, err)
	return path
}

// appendWALRecord appends a record with a valid checksum, the next LSN and
// the given type and payload to the store's WAL in dir, after its last
// record, and returns the segment and the record's offset.
func appendWALRecord(t *testing.T, dir string, typ uint8, payload []byte) (string, int64) {
	t.Helper()
	rep, err := wal.Verify(nil, filepath.Join(dir, walDir), nil)
	must(t, err)
	_, last := rep.Span()
	seg := rep.Segments[len(rep.Segments)-1]
	f, err := os.OpenFile(seg.Path, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(wal.AppendRecord(nil, last+1, typ, payload), seg.Used)
	must(t, errors.Join(err, f.Close()))
	return seg.Path, seg.Used
}

// A store with n pairs in its WAL (one record each) and, if snap, a
// snapshot at LSN snapAt taken after the first snapAt of them.
func damageStore(t *testing.T, n, snapAt uint64) (string, model) {
	t.Helper()
	dir := t.TempDir()
	s := openDir(t, dir, Options{NoPreallocate: true, SegmentSize: 1 << 20, Config: withConfig(func(c *Config) { c.SnapshotsKept = 100 })})
	m := model{}
	for i := uint64(1); i <= n; i++ {
		must(t, s.Insert(w(i), w(i+1)))
		m.add(w(i), w(i+1))
		if i == snapAt {
			must(t, s.Checkpoint(context.Background()))
		}
	}
	must(t, s.Close())
	return dir, m
}

// Open, VerifyDir, Open with Repair and the scrub worker validate a
// directory alike: WAL records with a valid checksum that the store
// cannot read, snapshots with zero CIDs or a cut that disagrees with
// their name, and a snapshot cut beyond the end of the WAL.
func TestOneValidation(t *testing.T) {
	one := w(1)
	addZero := append(make([]byte, 32), one[:]...)
	batch := binary.LittleEndian.AppendUint32(nil, 1000)
	batch = append(batch, 1)
	batch = append(batch, make([]byte, 64)...)
	zeroModel := model{}
	zeroModel.add(cid.CID{}, w(5))
	zeroModel.add(w(1), w(2))
	badRecord := func(typ uint8, payload []byte) func(*testing.T, string) (string, string) {
		return func(t *testing.T, dir string) (string, string) {
			seg, _ := appendWALRecord(t, dir, typ, payload)
			return seg, "record of type"
		}
	}
	tests := []struct {
		name string
		// damage crafts the directory and returns the file Open and
		// verify must name, and words of the reason.
		damage func(t *testing.T, dir string) (string, string)
		opens  bool // Open succeeds (skipping a snapshot the WAL rebuilds)
		pairs  int  // pairs after Open with Repair, -1: Open with Repair fails
	}{
		{"unknown record type", badRecord(9, make([]byte, 64)), false, 20},
		{"zero CID in a record", badRecord(opAdd, addZero), false, 20},
		{"impossible batch count", badRecord(opBatch, batch), false, 20},
		{"zero CID in a snapshot", func(t *testing.T, dir string) (string, string) {
			return craftSnapshot(t, dir, 15, 15, zeroModel), "zero CID"
		}, true, 20},
		{"header LSN is not the name's", func(t *testing.T, dir string) (string, string) {
			m := model{}
			m.add(w(1), w(2))
			return craftSnapshot(t, dir, 15, 14, m), "cut LSN"
		}, true, 20},
		{"snapshot cut beyond the WAL end", func(t *testing.T, dir string) (string, string) {
			m := model{}
			m.add(w(1), w(2))
			craftSnapshot(t, dir, 500, 500, m)
			return "", "before the snapshot's cut"
		}, false, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := damageStore(t, 20, 10)
			file, reason := tc.damage(t, dir)
			s, openErr := Open(dir, Options{})
			if tc.opens {
				if openErr != nil {
					t.Fatalf("Open: %v", openErr)
				}
				if s.Stats().Recovery.SnapshotsSkipped != 1 || s.Pairs() != 20 {
					t.Fatalf("Open skipped %d snapshots, has %d pairs", s.Stats().Recovery.SnapshotsSkipped, s.Pairs())
				}
				must(t, s.Close())
			} else if !errors.Is(openErr, ErrCorrupt) || !strings.Contains(openErr.Error(), file) || !strings.Contains(openErr.Error(), reason) {
				t.Fatalf("Open = %v, want ErrCorrupt naming %s and %q", openErr, file, reason)
			}
			_, verr := VerifyDir(nil, dir)
			if !errors.Is(verr, ErrCorrupt) || !strings.Contains(verr.Error(), file) || !strings.Contains(verr.Error(), reason) {
				t.Fatalf("VerifyDir = %v, want ErrCorrupt naming %s and %q", verr, file, reason)
			}
			if tc.pairs < 0 {
				return
			}
			r, err := Open(dir, Options{Repair: true})
			if err != nil {
				t.Fatalf("Open with Repair: %v", err)
			}
			defer r.Close()
			if r.Pairs() != tc.pairs {
				t.Fatalf("%d pairs after Open with Repair, want %d", r.Pairs(), tc.pairs)
			}
			if tc.opens {
				err := r.TriggerWorker(context.Background(), WorkerScrub)
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), file) {
					t.Fatalf("scrub = %v, want ErrCorrupt naming %s", err, file)
				}
			}
		})
	}
}
