package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
	path := Layout{dir}.Snapshot(name)
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
	rep, err := wal.Verify(nil, Layout{dir}.WAL(), nil)
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
		pairs  int  // pairs after Open with Repair
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
		}, false, 1},
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
				err := s.TriggerWorker(context.Background(), WorkerScrub)
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), file) {
					t.Fatalf("scrub = %v, want ErrCorrupt naming %s", err, file)
				}
				must(t, s.Close())
			} else if !errors.Is(openErr, ErrCorrupt) || !strings.Contains(openErr.Error(), file) || !strings.Contains(openErr.Error(), reason) {
				t.Fatalf("Open = %v, want ErrCorrupt naming %s and %q", openErr, file, reason)
			}
			_, verr := VerifyDir(nil, dir)
			if !errors.Is(verr, ErrCorrupt) || !strings.Contains(verr.Error(), file) || !strings.Contains(verr.Error(), reason) {
				t.Fatalf("VerifyDir = %v, want ErrCorrupt naming %s and %q", verr, file, reason)
			}
			r, err := Open(dir, Options{Repair: true})
			if err != nil {
				t.Fatalf("Open with Repair: %v", err)
			}
			if r.Pairs() != tc.pairs {
				t.Fatalf("%d pairs after Open with Repair, want %d", r.Pairs(), tc.pairs)
			}
			must(t, r.TriggerWorker(context.Background(), WorkerScrub))
			must(t, r.Close())
			if _, err := VerifyDir(nil, dir); err != nil {
				t.Fatalf("VerifyDir after repair: %v", err)
			}
		})
	}
}

// exportOf returns an export stream of m.
func exportOf(t *testing.T, m model) []byte {
	t.Helper()
	src := openMem(t, Options{})
	defer src.Close()
	for k, vs := range m {
		for v := range vs {
			must(t, src.Insert(k, v))
		}
	}
	var buf bytes.Buffer
	_, err := src.Export(context.Background(), &buf)
	must(t, err)
	return buf.Bytes()
}

// Open must not come up with less than was acknowledged when the WAL
// cannot rebuild what a snapshot it skips held: imported pairs are in no
// WAL record, so a damaged import snapshot, a snapshot at cut 0 with a
// zero CID or with a header that disagrees with its name, or an import
// into an emptied store whose snapshot is gone, fail Open with
// ErrCorrupt naming the file; verify agrees.
func TestSkippedSnapshotTheWALCannotRebuild(t *testing.T) {
	imported := model{}
	for i := uint64(1); i <= 50; i++ {
		imported.add(w(1000+i), w(i))
	}
	stream := exportOf(t, imported)
	importInto := func(t *testing.T, dir string, o Options, before func(*Store)) {
		s := openDir(t, dir, o)
		if before != nil {
			before(s)
		}
		_, err := s.Import(context.Background(), bytes.NewReader(stream))
		must(t, err)
		must(t, s.Close())
	}
	emptied := func(s *Store) {
		must(t, s.Insert(w(1), w(2)))
		must(t, s.Checkpoint(context.Background()))
		must(t, s.DeleteKey(w(1)))
	}
	newestSnap := func(t *testing.T, dir string) string {
		snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*.snap"))
		return snaps[len(snaps)-1]
	}
	small := model{}
	small.add(w(1), w(2))
	zero := model{}
	zero.add(cid.CID{}, w(2))
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the file to be named
	}{
		{"import snapshot at cut 0 with a damaged byte", func(t *testing.T, dir string) string {
			importInto(t, dir, Options{}, nil)
			p := newestSnap(t, dir)
			flipFile(t, p, 40)
			return p
		}},
		{"snapshot at cut 0 with a zero key", func(t *testing.T, dir string) string {
			must(t, openDir(t, dir, Options{}).Close())
			return craftSnapshot(t, dir, 0, 0, zero)
		}},
		{"snapshot named cut 0 whose header says 7", func(t *testing.T, dir string) string {
			must(t, openDir(t, dir, Options{}).Close())
			return craftSnapshot(t, dir, 0, 7, small)
		}},
		{"snapshot named cut 7 whose header says 0", func(t *testing.T, dir string) string {
			must(t, openDir(t, dir, Options{}).Close())
			return craftSnapshot(t, dir, 7, 0, small)
		}},
		{"import into an emptied store, snapshot damaged", func(t *testing.T, dir string) string {
			importInto(t, dir, Options{Config: withConfig(func(c *Config) { c.SnapshotsKept = 2 })}, emptied)
			p := newestSnap(t, dir)
			flipFile(t, p, 40)
			return p
		}},
		{"import into an emptied store, writes after it, snapshot gone", func(t *testing.T, dir string) string {
			importInto(t, dir, Options{Config: withConfig(func(c *Config) { c.SnapshotsKept = 2 })}, emptied)
			s := openDir(t, dir, Options{})
			must(t, s.Insert(w(3), w(4)))
			must(t, s.Close())
			p := newestSnap(t, dir)
			must(t, os.Remove(p))
			return "WAL record"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := tc.damage(t, dir)
			s, err := Open(dir, Options{})
			if err == nil {
				n := s.Pairs()
				s.Close()
				t.Fatalf("Open succeeded with %d pairs", n)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), file) {
				t.Fatalf("Open = %v, want ErrCorrupt naming %s", err, file)
			}
			if _, err := VerifyDir(nil, dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), file) {
				t.Fatalf("VerifyDir = %v, want ErrCorrupt naming %s", err, file)
			}
		})
	}

	// Undamaged, both imports recover in full.
	for _, before := range []func(*Store){nil, emptied} {
		dir := t.TempDir()
		importInto(t, dir, Options{Config: withConfig(func(c *Config) { c.SnapshotsKept = 2 })}, before)
		s := openDir(t, dir, Options{})
		checkAll(t, s, imported, 0, 0)
		must(t, s.Close())
		_, err := VerifyDir(nil, dir)
		must(t, err)
	}
}

// writeJunk puts a file of garbage named like the snapshot at cut lsn.
func writeJunk(t *testing.T, dir string, lsn uint64) string {
	t.Helper()
	p := Layout{dir}.Snapshot(lsn)
	must(t, os.WriteFile(p, bytes.Repeat([]byte("junk"), 100), 0o600))
	return p
}

// Retention and WAL truncation count only snapshots that validated: a
// junk file named like a snapshot, whether recovery skipped it or it
// appeared while the store ran, is moved aside, and never makes a
// checkpoint retire the valid snapshots or the WAL they need.
func TestRetentionCountsOnlyValidSnapshots(t *testing.T) {
	ctx := context.Background()
	t.Run("skipped by Open", func(t *testing.T) {
		dir := t.TempDir()
		o := Options{Config: withConfig(func(c *Config) { c.SnapshotsKept = 2 }), SegmentSize: wal.MinSegmentSize, NoPreallocate: true}
		s := openDir(t, dir, o)
		m := model{}
		fill(t, s, m, 0, 100)
		must(t, s.Checkpoint(ctx)) // at 100
		fill(t, s, m, 100, 200)
		must(t, s.Close())
		junk := writeJunk(t, dir, 150)
		s = openDir(t, dir, o)
		if s.Stats().Recovery.SnapshotsSkipped != 1 {
			t.Fatalf("recovery %+v", s.Stats().Recovery)
		}
		must(t, s.Insert(w(1000), w(1)))
		m.add(w(1000), w(1))
		must(t, s.Checkpoint(ctx)) // at 201: keeps 201 and 100, not the junk
		must(t, s.Close())
		// Losing the newest snapshot falls back to the one at 100, whose
		// WAL is still there.
		flipFile(t, Layout{dir}.Snapshot(201), 40)
		r := openDir(t, dir, Options{})
		defer r.Close()
		if r.Stats().Recovery.SnapshotLSN != 100 {
			t.Fatalf("recovered from %d, want 100", r.Stats().Recovery.SnapshotLSN)
		}
		checkAll(t, r, m, 0, 0)
		if _, err := os.Stat(junk + vfs.AsideSuffix); err != nil {
			t.Fatalf("junk not moved aside: %v", err)
		}
	})
	t.Run("appeared while open", func(t *testing.T) {
		dir := t.TempDir()
		s := openDir(t, dir, Options{Config: withConfig(func(c *Config) { c.SnapshotsKept = 1 }), SegmentSize: 4096, NoPreallocate: true})
		m := model{}
		fill(t, s, m, 0, 200)
		must(t, s.Checkpoint(ctx))
		junk := writeJunk(t, dir, 1_000_000)
		fill(t, s, m, 200, 400)
		must(t, s.Checkpoint(ctx))
		must(t, s.TriggerWorker(ctx, WorkerGC))
		must(t, s.Close())
		r := openDir(t, dir, Options{})
		defer r.Close()
		checkAll(t, r, m, 0, 0)
		if _, err := os.Stat(junk + vfs.AsideSuffix); err != nil {
			t.Fatalf("junk not moved aside: %v", err)
		}
	})
}

// repairAndCheck repairs dir (with Repair, or with Open and
// Options.Repair) and checks that the store then opens holding want and
// that VerifyDir finds nothing wrong.
func repairAndCheck(t *testing.T, dir string, viaOpen bool, want model) RepairReport {
	t.Helper()
	var rep RepairReport
	if viaOpen {
		s, err := Open(dir, Options{Repair: true})
		must(t, err)
		if s.Stats().Recovery.Repair != nil {
			rep = *s.Stats().Recovery.Repair
		}
		must(t, s.Close())
	} else {
		var err error
		rep, err = Repair(nil, dir, nil)
		must(t, err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after repair: %v\nreport %+v", err, rep)
	}
	checkAll(t, s, want, 0, 0)
	must(t, s.Close())
	if _, err := VerifyDir(nil, dir); err != nil {
		t.Fatalf("VerifyDir after repair: %v", err)
	}
	return rep
}

// Repair knows the snapshots: damage at or below the newest valid
// snapshot's cut is dropped without touching the records after the cut,
// and a stray file named like a segment is moved aside instead of
// deciding what real segments go. The store then opens with every pair
// and verify agrees.
func TestRepairKeepsWhatFollowsTheCut(t *testing.T) {
	ctx := context.Background()
	// 300 pairs, one record each; a snapshot at 200; small segments
	// (several records each) or one large one.
	build := func(t *testing.T, segSize int64) (string, model) {
		dir := t.TempDir()
		s := openDir(t, dir, Options{SegmentSize: segSize, NoPreallocate: true, Config: withConfig(func(c *Config) { c.SnapshotsKept = 100 })})
		m := model{}
		for i := uint64(1); i <= 300; i++ {
			must(t, s.Insert(w(i), w(i+1)))
			m.add(w(i), w(i+1))
			if i == 200 {
				must(t, s.Checkpoint(ctx))
			}
		}
		must(t, s.Close())
		return dir, m
	}
	recordAt := func(t *testing.T, dir string, lsn uint64) (string, int64) {
		rep, err := wal.Verify(nil, Layout{dir}.WAL(), nil)
		must(t, err)
		for _, sg := range rep.Segments {
			if sg.FirstLSN <= lsn && lsn <= sg.LastLSN {
				return sg.Path, wal.SegmentHeaderSize + int64(lsn-sg.FirstLSN)*(wal.HeaderSize+64)
			}
		}
		t.Fatalf("no record %d", lsn)
		return "", 0
	}
	for _, viaOpen := range []bool{false, true} {
		for _, segSize := range []int64{1 << 20, wal.MinSegmentSize} {
			name := fmt.Sprintf("open=%v/segment=%d", viaOpen, segSize)
			t.Run(name+"/flip below the cut", func(t *testing.T) {
				dir, m := build(t, segSize)
				vr, err := wal.Verify(nil, Layout{dir}.WAL(), nil)
				must(t, err)
				first, _ := vr.Span() // retention dropped segments below the cut
				if first > 200 {
					t.Fatalf("the WAL starts at %d", first)
				}
				seg, off := recordAt(t, dir, max(first, 150))
				flipFile(t, seg, off+30)
				if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open = %v, want ErrCorrupt", err)
				}
				rep := repairAndCheck(t, dir, viaOpen, m)
				if !rep.WAL.Truncated || rep.WAL.RecordsDropped != 0 || rep.BaseLSN != 200 {
					t.Fatalf("report %+v", rep)
				}
			})
			t.Run(name+"/stray segment before the log", func(t *testing.T) {
				if segSize >= 1<<20 {
					return // one segment: retention keeps the log at LSN 1
				}
				dir, m := build(t, segSize)
				// Retire the WAL below the snapshot, as retention does,
				// so that the log starts above LSN 1.
				s := openDir(t, dir, Options{Config: withConfig(func(c *Config) { c.SnapshotsKept = 1 }), SegmentSize: segSize, NoPreallocate: true})
				must(t, s.Insert(w(1000), w(1)))
				m.add(w(1000), w(1))
				must(t, s.Checkpoint(ctx))
				must(t, s.Insert(w(1001), w(1)))
				m.add(w(1001), w(1))
				must(t, s.Close())
				stray := filepath.Join(dir, walDir, "00000000000000000001.wal")
				if _, err := os.Stat(stray); err == nil {
					t.Fatal("the log still starts at LSN 1")
				}
				must(t, os.WriteFile(stray, bytes.Repeat([]byte("garbage!"), 64), 0o600))
				if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open = %v, want ErrCorrupt", err)
				}
				rep := repairAndCheck(t, dir, viaOpen, m)
				if rep.WAL.RecordsDropped != 0 || len(rep.WAL.MovedAside) != 1 || rep.WAL.MovedAside[0] != stray+".corrupt" {
					t.Fatalf("report %+v", rep)
				}
			})
			t.Run(name+"/flip above the cut", func(t *testing.T) {
				dir, m := build(t, segSize)
				seg, off := recordAt(t, dir, 250)
				flipFile(t, seg, off+30)
				for i := uint64(250); i <= 300; i++ {
					delete(m, w(i))
				}
				rep := repairAndCheck(t, dir, viaOpen, m)
				if rep.WAL.RecordsDropped != 50 || rep.WAL.LastLSN != 249 {
					t.Fatalf("report %+v", rep)
				}
				// What the log dropped is still on disk.
				aside, _ := filepath.Glob(filepath.Join(dir, walDir, "*.corrupt"))
				if len(aside) == 0 {
					t.Fatal("nothing moved aside")
				}
			})
		}
	}
}

// Repair of imports whose snapshot is lost: the WAL is cut before the
// imported record, so that the store opens as it was before the import
// instead of as a mix, and the loss is reported.
func TestRepairLostImport(t *testing.T) {
	imported := model{}
	for i := uint64(1); i <= 20; i++ {
		imported.add(w(500+i), w(i))
	}
	stream := exportOf(t, imported)
	emptiedStore := func(t *testing.T) string {
		dir := t.TempDir()
		s := openDir(t, dir, Options{})
		must(t, s.Insert(w(1), w(2)))
		must(t, s.DeleteKey(w(1)))
		must(t, s.Close())
		return dir
	}
	t.Run("crash between imported record and snapshot", func(t *testing.T) {
		dir := emptiedStore(t)
		appendWALRecord(t, dir, opImported, encodeImported(20, 20))
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v, want ErrCorrupt", err)
		}
		rep := repairAndCheck(t, dir, false, model{})
		if rep.WAL.LastLSN != 2 || !strings.Contains(rep.WAL.Reason, "imported") {
			t.Fatalf("report %+v", rep)
		}
		// The load can be done again.
		s := openDir(t, dir, Options{})
		_, err := s.Import(context.Background(), bytes.NewReader(stream))
		must(t, err)
		must(t, s.Close())
		s = openDir(t, dir, Options{})
		checkAll(t, s, imported, 0, 0)
		must(t, s.Close())
	})
	// importDamaged imports into dir, writes a pair after the import and
	// damages the import's snapshot, which it returns.
	importDamaged := func(t *testing.T, dir string) string {
		s := openDir(t, dir, Options{})
		_, err := s.Import(context.Background(), bytes.NewReader(stream))
		must(t, err)
		must(t, s.Insert(w(9), w(9)))
		must(t, s.Close())
		snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*.snap"))
		flipFile(t, snaps[0], 40)
		return snaps[0]
	}
	t.Run("import snapshot damaged, writes after it", func(t *testing.T) {
		dir := emptiedStore(t)
		importDamaged(t, dir)
		rep := repairAndCheck(t, dir, true, model{})
		if len(rep.Snapshots) != 1 || !rep.Snapshots[0].Lost || rep.WAL.RecordsDropped != 1 || rep.WAL.LastLSN != 2 {
			t.Fatalf("report %+v", rep)
		}
	})
	t.Run("import snapshot at cut 0 damaged", func(t *testing.T) {
		dir := t.TempDir()
		snap := importDamaged(t, dir)
		want := model{}
		want.add(w(9), w(9))
		rep := repairAndCheck(t, dir, false, want)
		if len(rep.Snapshots) != 1 || !rep.Snapshots[0].Lost || rep.Snapshots[0].MovedTo != snap+".corrupt" {
			t.Fatalf("report %+v", rep)
		}
	})
}

// Open and GC remove only the store's own temporary files in snapshots/,
// not every file whose name ends in .tmp.
func TestOnlyOwnTempFilesRemoved(t *testing.T) {
	dir, m := damageStore(t, 20, 10)
	own := []string{snapshot.Name(15) + ".tmp", snapshot.Name(10) + ".del.tmp"}
	foreign := []string{"notes.tmp", "x.snap.tmp", snapshot.Name(15) + ".tmp.tmp", snapshot.Name(15) + ".old.tmp"}
	for _, n := range append(slices.Clone(own), foreign...) {
		must(t, os.WriteFile(filepath.Join(dir, snapDir, n), []byte("x"), 0o600))
	}
	s := openDir(t, dir, Options{})
	checkAll(t, s, m, 0, 0)
	must(t, s.TriggerWorker(context.Background(), WorkerGC))
	must(t, s.Close())
	for _, n := range own {
		if _, err := os.Stat(filepath.Join(dir, snapDir, n)); !os.IsNotExist(err) {
			t.Errorf("own temporary file %s not removed: %v", n, err)
		}
	}
	for _, n := range foreign {
		if _, err := os.Stat(filepath.Join(dir, snapDir, n)); err != nil {
			t.Errorf("file %s removed: %v", n, err)
		}
	}
}

// A worker that panics while it holds shard locks (a bug: here the
// checkpointer, inside its cut) is recovered by the scheduler and counted
// as an error; the locks are released, so writes and Close go on.
func TestWorkerPanicLeavesNoShardLocked(t *testing.T) {
	s := openDir(t, t.TempDir(), Options{})
	must(t, s.Insert(w(1), w(2)))
	s.ckpt.lastAt.Store(0) // a checkpoint is due
	panicked := false
	s.cutHook = func() {
		if !panicked {
			panicked = true
			panic("bug in a maintenance step")
		}
	}
	err := s.TriggerWorker(context.Background(), WorkerCheckpoint)
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("TriggerWorker = %v, want the recovered panic", err)
	}
	done := make(chan error, 1)
	go func() { done <- errors.Join(s.Insert(w(3), w(4)), s.Checkpoint(context.Background()), s.Close()) }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(10 * time.Second): // a hang detector, not synchronisation
		t.Fatal("writes and Close hang after a worker panic")
	}
}

// Open of a directory that holds a store's segments or snapshots itself
// (a store's wal/ or snapshots/ given for the store) fails with
// ErrNotStore instead of creating an empty store there; a directory with
// other files still becomes a store.
func TestOpenRefusesPartOfAStore(t *testing.T) {
	dir, _ := damageStore(t, 20, 10)
	for _, sub := range []string{walDir, snapDir} {
		p := filepath.Join(dir, sub)
		before, _ := os.ReadDir(p)
		if _, err := Open(p, Options{}); !errors.Is(err, ErrNotStore) {
			t.Fatalf("Open(%s) = %v, want ErrNotStore", p, err)
		}
		if after, _ := os.ReadDir(p); len(after) != len(before) {
			t.Fatalf("Open(%s) created files", p)
		}
	}
	other := t.TempDir()
	must(t, os.Mkdir(filepath.Join(other, "lost+found"), 0o700))
	must(t, os.WriteFile(filepath.Join(other, "notes.txt"), nil, 0o600))
	must(t, openDir(t, other, Options{}).Close())
}

// A checkpoint whose snapshot takes the name of a junk file moves the
// junk aside first instead of replacing it, and a directory named like a
// snapshot is no snapshot.
func TestCheckpointMovesJunkAside(t *testing.T) {
	dir, m := damageStore(t, 20, 10) // snapshot at 10, WAL 1..20
	junk := writeJunk(t, dir, 20)
	must(t, os.Mkdir(Layout{dir}.Snapshot(15), 0o700))
	s := openDir(t, dir, Options{})
	if s.Stats().Recovery.SnapshotsSkipped != 1 {
		t.Fatalf("recovery %+v", s.Stats().Recovery)
	}
	must(t, s.Checkpoint(context.Background())) // cut 20
	must(t, s.Close())
	if data, err := os.ReadFile(junk + vfs.AsideSuffix); err != nil || !bytes.HasPrefix(data, []byte("junk")) {
		t.Fatalf("junk not moved aside: %v", err)
	}
	if fi, err := os.Stat(Layout{dir}.Snapshot(15)); err != nil || !fi.IsDir() {
		t.Fatalf("directory named like a snapshot: %v", err)
	}
	r := openDir(t, dir, Options{})
	defer r.Close()
	if r.Stats().Recovery.SnapshotLSN != 20 {
		t.Fatalf("recovered from %d, want 20", r.Stats().Recovery.SnapshotLSN)
	}
	checkAll(t, r, m, 0, 0)
}
