package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/internal/sparsefile"
	"github.com/cidstore/cidstore/snapshot"
	"github.com/cidstore/cidstore/store"
	"github.com/cidstore/cidstore/vfs"
	"github.com/cidstore/cidstore/wal"
)

// The hostile-directory table: each row crafts a damaged or surprising
// store directory and runs the five tools on it, Open (in the test),
// verify, inspect, dump and repair (each as a process of its own, so that
// its peak RSS is measured). They must agree on what is damaged, no tool
// may lose an acknowledged pair that an intact file holds, and each tool
// must stay within hostileRSS of memory.
//
// The base store: 300 batches of 100 pairs (batch b is WAL record b), in
// 1 MiB segments ([1..160] and [161..300]), checkpointed after batch 100
// and batch 200. With one snapshot kept, the WAL below 161 is gone.
//
// Three rows are sparse files of gigabytes that hold a few bytes of data:
// memory must follow what a file holds, not its apparent size.

// hostileRSS bounds the peak RSS of one tool run, in KiB: 64 MiB over the
// store's own data, which is about 2 MiB of files and 4 MiB in memory.
const hostileRSS = (64 + 8) << 10

const (
	hostileBatches = 300
	hostileBatch   = 100 // pairs per batch
)

func hostilePair(b, j int) (cid.CID, cid.CID) {
	return cid.FromWords(1, 0, uint64(b), uint64(j)), cid.FromWords(2, 0, 0, uint64(b))
}

// hostileBase writes the base store into dir; snaps lists the batches
// after which to checkpoint.
func hostileBase(t *testing.T, dir string, kept int, snaps ...int) {
	t.Helper()
	c := store.DefaultConfig()
	c.Sync, c.SnapshotsKept, c.CheckpointWALBytes, c.CheckpointInterval = store.SyncNever, kept, 0, 0
	s, err := store.Open(dir, store.Options{SegmentSize: 1 << 20, NoPreallocate: true, Config: &c})
	if err != nil {
		t.Fatal(err)
	}
	for b := 1; b <= hostileBatches; b++ {
		insertBatches(t, s, b, b)
		if slices.Contains(snaps, b) {
			if err := s.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// insertBatches inserts batches from..to into s, one InsertBatch each.
func insertBatches(t *testing.T, s *store.Store, from, to int) {
	t.Helper()
	for b := from; b <= to; b++ {
		pairs := make([]store.Pair, hostileBatch)
		for j := range pairs {
			pairs[j].Key, pairs[j].Value = hostilePair(b, j)
		}
		if err := s.InsertBatch(pairs); err != nil {
			t.Fatal(err)
		}
	}
}

// segmentOf returns the segment file holding WAL record lsn and the
// record's offset and size in it.
func segmentOf(t *testing.T, dir string, lsn uint64) (string, int64, int64) {
	t.Helper()
	rep, err := wal.Verify(nil, store.Layout{Dir: dir}.WAL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range rep.Segments {
		if lsn < sg.FirstLSN || lsn > sg.LastLSN {
			continue
		}
		data, err := os.ReadFile(sg.Path)
		if err != nil {
			t.Fatal(err)
		}
		r := wal.NewReader(bytes.NewReader(data[wal.SegmentHeaderSize:]))
		for {
			start := r.Offset()
			rec, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if rec.LSN == lsn {
				return sg.Path, wal.SegmentHeaderSize + start, r.Offset() - start
			}
		}
	}
	t.Fatalf("no WAL record %d", lsn)
	return "", 0, 0
}

// rewriteRecord replaces WAL record lsn with a frame of the same size
// whose checksum is valid: change edits its type and payload.
func rewriteRecord(t *testing.T, dir string, lsn uint64, change func(typ *uint8, payload []byte)) string {
	t.Helper()
	path, off, size := segmentOf(t, dir, lsn)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	typ := data[off+16]
	payload := bytes.Clone(data[off+wal.HeaderSize : off+size])
	change(&typ, payload)
	copy(data[off:], wal.AppendRecord(nil, lsn, typ, payload))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func flipAt(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(data))
	}
	data[off] ^= 0x20
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func snapPath(dir string, lsn uint64) string { return store.Layout{Dir: dir}.Snapshot(lsn) }

// writeSnap writes a checksummed snapshot named for cut name whose header
// says lsn, holding one entry.
func writeSnap(t *testing.T, dir string, name, lsn uint64, k cid.CID, v cid.CID) string {
	t.Helper()
	part := func(yield func(cid.CID, []cid.CID) bool) { yield(k, []cid.CID{v}) }
	_, err := snapshot.WriteFile(context.Background(), vfs.Default, snapPath(dir, name),
		snapshot.Header{LSN: lsn, Parts: 1}, []snapshot.Part{part})
	if err != nil {
		t.Fatal(err)
	}
	return snapPath(dir, name)
}

// hostileRow is one crafted directory and what the tools must make of it.
type hostileRow struct {
	name string
	// build writes the directory and returns the damaged file ("" for
	// none), which every tool that reports damage must name.
	build func(t *testing.T, dir string) string
	opens bool // Open succeeds, with every pair
	// lost reports the batches a store repaired from this directory no
	// longer holds: only what the damage itself destroyed, or what
	// follows it in the log (kept in the files moved aside).
	lost func(b int) bool
	// blockDamage: the damage is inside a snapshot's blocks, which
	// inspect does not read.
	blockDamage bool
}

func none(int) bool { return false }

func hostileRows(base func(kept int, snaps ...int) func(*testing.T, string)) []hostileRow {
	std := base(1, 100, 200) // WAL 161..300, snapshot 200
	two := base(2, 100, 200) // WAL 1..300, snapshots 100 and 200
	return []hostileRow{
		{name: "clean", opens: true, lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			return ""
		}},
		{name: "torn final write", opens: true, lost: func(b int) bool { return b == hostileBatches }, build: func(t *testing.T, dir string) string {
			std(t, dir)
			path, off, size := segmentOf(t, dir, hostileBatches)
			if err := os.Truncate(path, off+size/2); err != nil { // half of the last record
				t.Fatal(err)
			}
			return ""
		}},
		{name: "bit flip in a record below the snapshot's cut", lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			path, off, _ := segmentOf(t, dir, 180)
			flipAt(t, path, off+100)
			return path
		}},
		{name: "bit flip in a record above the cut", lost: func(b int) bool { return b >= 250 }, build: func(t *testing.T, dir string) string {
			std(t, dir)
			path, off, _ := segmentOf(t, dir, 250)
			flipAt(t, path, off+100)
			return path
		}},
		{name: "checksummed record with a zero CID", lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			return rewriteRecord(t, dir, 170, func(_ *uint8, p []byte) { clear(p[5 : 5+cid.Size]) })
		}},
		{name: "checksummed batch with an impossible count", lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			return rewriteRecord(t, dir, 175, func(_ *uint8, p []byte) { binary.LittleEndian.PutUint32(p, 1<<30) })
		}},
		{name: "checksummed record of an unknown type", lost: func(b int) bool { return b >= 290 }, build: func(t *testing.T, dir string) string {
			std(t, dir)
			return rewriteRecord(t, dir, 290, func(typ *uint8, _ []byte) { *typ = 99 })
		}},
		{name: "stray file named like a segment before the log", lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			p := filepath.Join(store.Layout{Dir: dir}.WAL(), "00000000000000000001.wal")
			if err := os.WriteFile(p, bytes.Repeat([]byte("stray"), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "stray file named like a segment after the log", lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			p := filepath.Join(store.Layout{Dir: dir}.WAL(), "00000000000000009999.wal")
			if err := os.WriteFile(p, bytes.Repeat([]byte("stray"), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "junk named like a snapshot beyond the WAL end", lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			p := snapPath(dir, 99999)
			if err := os.WriteFile(p, bytes.Repeat([]byte("junk"), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "junk named like a snapshot the WAL covers", opens: true, lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			p := snapPath(dir, 250)
			if err := os.WriteFile(p, bytes.Repeat([]byte("junk"), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "snapshot whose header cut is not its name's", opens: true, lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			k, v := hostilePair(1, 0)
			return writeSnap(t, dir, 250, 240, k, v)
		}},
		{name: "checksummed snapshot with a zero CID", opens: true, lost: none, blockDamage: true, build: func(t *testing.T, dir string) string {
			std(t, dir)
			_, v := hostilePair(1, 0)
			return writeSnap(t, dir, 250, 250, cid.CID{}, v)
		}},
		{name: "newest snapshot damaged, an older one valid", opens: true, lost: none, blockDamage: true, build: func(t *testing.T, dir string) string {
			two(t, dir)
			flipAt(t, snapPath(dir, 200), 40)
			return snapPath(dir, 200)
		}},
		{name: "only snapshot damaged, WAL below it retired", lost: func(int) bool { return true }, blockDamage: true, build: func(t *testing.T, dir string) string {
			std(t, dir)
			flipAt(t, snapPath(dir, 200), 40)
			return snapPath(dir, 200)
		}},
		{name: "last WAL segment deleted after a checkpoint", lost: none, build: func(t *testing.T, dir string) string {
			base(1, 100, 200, 300)(t, dir)
			path, _, _ := segmentOf(t, dir, hostileBatches)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return "before the snapshot's cut"
		}},
		{name: "last WAL segment deleted, records above the cut with it", lost: func(b int) bool { return b > 200 }, build: func(t *testing.T, dir string) string {
			two(t, dir)
			path, _, _ := segmentOf(t, dir, hostileBatches)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return "before the snapshot's cut"
		}},
		{name: "loaded snapshot at cut 0 damaged", lost: func(b int) bool { return b <= 200 }, blockDamage: true, build: func(t *testing.T, dir string) string {
			src := filepath.Join(t.TempDir(), "src") // the dump holds batches 1..200
			s, err := store.Open(src, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			insertBatches(t, s, 1, 200)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			dump := filepath.Join(t.TempDir(), "dump.snap")
			if code, out := cli(t, "dump", src, dump); code != 0 {
				t.Fatalf("dump: %s", out)
			}
			if code, out := cli(t, "load", dump, dir); code != 0 {
				t.Fatalf("load: %s", out)
			}
			s, err = store.Open(dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			insertBatches(t, s, 201, hostileBatches)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			flipAt(t, snapPath(dir, 0), 40)
			return snapPath(dir, 0)
		}},
		{name: "sparse 16 GiB junk named like a snapshot", opens: true, lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			p := snapPath(dir, 250)
			if err := sparsefile.Write(p, 16<<30, map[int64][]byte{0: []byte("JUNKJUNK")}); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "sparse 4 GiB snapshot whose trailer claims a footer filling it", opens: true, lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			p := snapPath(dir, 250)
			const size = 4 << 30
			hdr := make([]byte, snapshot.HeaderSize)
			copy(hdr, snapshot.Magic)
			binary.LittleEndian.PutUint16(hdr[8:], snapshot.Version)
			binary.LittleEndian.PutUint32(hdr[12:], 1)
			binary.LittleEndian.PutUint64(hdr[16:], 250)
			binary.LittleEndian.PutUint32(hdr[32:], crc32.Checksum(hdr[:32], crc32.MakeTable(crc32.Castagnoli)))
			trailer := make([]byte, snapshot.TrailerSize)
			binary.LittleEndian.PutUint64(trailer[0:], snapshot.HeaderSize)
			binary.LittleEndian.PutUint64(trailer[8:], size-snapshot.HeaderSize-snapshot.TrailerSize)
			copy(trailer[24:], snapshot.Magic)
			if err := sparsefile.Write(p, size, map[int64][]byte{0: hdr, size - snapshot.TrailerSize: trailer}); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "sparse 2 GiB segment: a bad frame, zeros, a valid record", lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			// It follows the log; its one record repeats a pair the store
			// holds, so repair keeps it without changing the pairs.
			k, v := hostilePair(1, 0)
			rec := wal.AppendRecord(nil, hostileBatches+1, 1, append(k[:], v[:]...))
			head := append([]byte("CIDWAL\x01\x00"), bytes.Repeat([]byte{0xee}, 40)...)
			p := filepath.Join(store.Layout{Dir: dir}.WAL(), fmt.Sprintf("%020d.wal", hostileBatches+1))
			const size = 2 << 30
			if err := sparsefile.Write(p, size, map[int64][]byte{0: head, size - int64(len(rec)): rec}); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "files that are not the store's own in its directories", opens: true, lost: none, build: func(t *testing.T, dir string) string {
			std(t, dir)
			for _, p := range []string{"snapshots/notes.tmp", "snapshots/old.snap.bak", "wal/readme.txt", "wal/00000000000000000161.wal.bak"} {
				if err := os.WriteFile(filepath.Join(dir, p), []byte("not the store's"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return ""
		}},
	}
}

// checkPairs checks that s holds exactly the batches lost does not
// report.
func checkPairs(t *testing.T, s *store.Store, lost func(int) bool) {
	t.Helper()
	want := 0
	for b := 1; b <= hostileBatches; b++ {
		if lost(b) {
			continue
		}
		want += hostileBatch
		for j := range hostileBatch {
			if k, v := hostilePair(b, j); !s.Contains(k, v) {
				t.Fatalf("pair %d of batch %d missing", j, b)
			}
		}
	}
	if s.Pairs() != want {
		t.Fatalf("%d pairs, want %d", s.Pairs(), want)
	}
}

// survivors lists the files under dir, to check that repair moved aside
// (renamed) what it dropped rather than deleting it.
func survivors(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && p != (store.Layout{Dir: dir}).Lock() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHostileDirectories(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a store per row")
	}
	bin := toolBinary(t)
	// Each base store is built once and copied for every row that uses it.
	cache, built := t.TempDir(), map[string]string{}
	base := func(kept int, snaps ...int) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			key := fmt.Sprint(kept, snaps)
			if built[key] == "" {
				built[key] = filepath.Join(cache, fmt.Sprint(len(built)))
				hostileBase(t, built[key], kept, snaps...)
			}
			if err := os.CopyFS(dir, os.DirFS(built[key])); err != nil {
				t.Fatal(err)
			}
		}
	}
	var table strings.Builder
	fmt.Fprintln(&table, "| directory | Open | verify | inspect | dump | repair | peak RSS (MiB) |")
	fmt.Fprintln(&table, "|---|---|---|---|---|---|---|")
	for _, row := range hostileRows(base) {
		t.Run(row.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			damaged := row.build(t, dir)
			names := func(what, out string) {
				t.Helper()
				if damaged != "" && !strings.Contains(out, damaged) {
					t.Errorf("%s does not name %s:\n%s", what, damaged, out)
				}
			}
			var peak int64

			// Open.
			var logBuf bytes.Buffer
			s, err := store.Open(dir, store.Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
			openCol := "opens"
			if row.opens {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				checkPairs(t, s, row.lost) // a torn final write was never acknowledged
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				names("Open's log", logBuf.String())
				switch {
				case damaged != "":
					openCol = "opens, skips the damaged snapshot"
				case row.lost(hostileBatches):
					openCol = "opens, drops the torn write"
				}
			} else {
				if !errors.Is(err, store.ErrCorrupt) {
					t.Fatalf("Open = %v, want ErrCorrupt", err)
				}
				names("Open", err.Error())
				openCol = "ErrCorrupt"
			}
			// A writable Open drops a torn tail, or starts a WAL that has
			// no segment; the other tools only read.
			before := listing(t, dir)

			// verify, inspect, dump: read-only, and of one mind with Open.
			code, out, rss := runTool(t, bin, "verify", dir)
			peak = max(peak, rss)
			verifyCol := "ok"
			if damaged == "" {
				if code != 0 {
					t.Fatalf("verify: exit %d\n%s", code, out)
				}
			} else {
				if code != 1 || !strings.Contains(out, "corruption found") {
					t.Fatalf("verify: exit %d\n%s", code, out)
				}
				names("verify", out)
				verifyCol = "names it"
			}
			code, out, rss = runTool(t, bin, "inspect", dir)
			peak = max(peak, rss)
			inspectCol := "ok"
			if code != 0 {
				t.Fatalf("inspect: exit %d\n%s", code, out)
			}
			switch {
			case damaged != "" && row.blockDamage:
				if !strings.Contains(out, "blocks were not read") {
					t.Errorf("inspect does not say that it read no blocks:\n%s", out)
				}
				inspectCol = "header ok; blocks not read"
			case damaged != "":
				names("inspect", out)
				inspectCol = "names it"
			}
			dump := filepath.Join(t.TempDir(), "dump.snap")
			code, out, rss = runTool(t, bin, "dump", dir, dump)
			peak = max(peak, rss)
			dumpCol := "dumps what Open has"
			if row.opens {
				if code != 0 || !strings.Contains(out, fmt.Sprintf("%d pairs", s.Pairs())) {
					t.Fatalf("dump: exit %d\n%s", code, out)
				}
			} else {
				if code != 1 {
					t.Fatalf("dump: exit %d\n%s", code, out)
				}
				names("dump", out)
				dumpCol = "fails as Open"
			}
			if after := listing(t, dir); !slices.Equal(before, after) {
				t.Fatalf("a read-only tool changed the directory:\n%v\n%v", before, after)
			}

			// repair: the store opens with every pair an intact file
			// holds, verify agrees, and nothing was deleted.
			files := survivors(t, dir)
			code, out, rss = runTool(t, bin, "repair", dir)
			peak = max(peak, rss)
			if code != 0 {
				t.Fatalf("repair: exit %d\n%s", code, out)
			}
			if damaged != "" && !strings.HasPrefix(damaged, "before") {
				names("repair", out)
			}
			s, err = store.Open(dir, store.Options{})
			if err != nil {
				t.Fatalf("Open after repair: %v\n%s", err, out)
			}
			checkPairs(t, s, row.lost)
			lostPairs := hostileBatches*hostileBatch - s.Pairs()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if code, vout, _ := runTool(t, bin, "verify", dir); code != 0 {
				t.Fatalf("verify after repair: exit %d\n%s\nrepair said:\n%s", code, vout, out)
			}
			for _, f := range files {
				if _, err := os.Stat(f); err == nil {
					continue
				}
				if aside, _ := filepath.Glob(f + "*" + vfs.AsideSuffix); len(aside) == 0 {
					t.Errorf("repair deleted %s", f)
				}
			}
			repairCol := "nothing to repair"
			switch {
			case strings.Contains(out, "repaired") && lostPairs == 0:
				repairCol = "repaired, every pair kept"
			case strings.Contains(out, "repaired"):
				repairCol = fmt.Sprintf("repaired, %d pairs not in the store (the damage took them, or they follow it; kept aside)", lostPairs)
			}

			if peak > hostileRSS {
				t.Errorf("peak RSS %d KiB, bound %d KiB", peak, hostileRSS)
			}
			fmt.Fprintf(&table, "| %s | %s | %s | %s | %s | %s | %.0f |\n", row.name, openCol, verifyCol, inspectCol, dumpCol, repairCol, float64(peak)/1024)
		})
	}
	t.Logf("hostile-directory table:\n%s", table.String())
}
