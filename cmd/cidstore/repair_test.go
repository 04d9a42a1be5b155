package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

func TestRepairCorruptStore(t *testing.T) {
	dir := t.TempDir()
	const n = 240
	segs := writeRepairStore(t, dir, n)

	// Damage the third record of the first segment: an add record is a
	// 17-byte frame header and a 64-byte payload after the 8-byte segment
	// header. Valid records follow, so this is corruption, not a torn tail.
	const frame, kept = 17 + 2*cid.Size, 2
	off := int64(8 + kept*frame)
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[off+20] ^= 0x01
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(dir, store.Options{}); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open of the damaged store = %v, want ErrCorrupt", err)
	}

	code, out, errOut := runCLI("repair", dir)
	if code != 0 {
		t.Fatalf("repair exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"corruption:        found",
		fmt.Sprintf("%s at offset %d: checksum mismatch", segs[0], off),
		"log kept:          LSN 1..2",
		fmt.Sprintf("records dropped:   %d lost from the log", n-kept-1),
		fmt.Sprintf("moved aside:       %d", len(segs)),
		segs[len(segs)-1] + ".corrupt",
		"rewritten:         " + segs[0],
		"result:            repaired",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("repair output lacks %q:\n%s", want, out)
		}
	}

	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("Open after repair: %v", err)
	}
	defer s.Close()
	if s.Pairs() != kept {
		t.Fatalf("%d pairs after repair, want the %d before the damage", s.Pairs(), kept)
	}
	for i := uint64(1); i <= kept; i++ {
		if k, v := repairPair(i); !s.Contains(k, v) {
			t.Fatalf("pair %d lost by repair", i)
		}
	}
	if k, v := repairPair(n + 1); s.Insert(k, v) != nil {
		t.Fatal("store not writable after repair")
	}
}

func TestRepairCleanAndTornStore(t *testing.T) {
	dir := t.TempDir()
	segs := writeRepairStore(t, dir, 160)
	code, out, errOut := runCLI("repair", dir)
	if code != 0 || !strings.Contains(out, "corruption:        none found") || !strings.Contains(out, "torn tail:         none") ||
		!strings.Contains(out, "nothing to repair") {
		t.Fatalf("repair of a clean store: exit %d\n%s%s", code, out, errOut)
	}

	// Half a record at the end of the last segment is a torn write.
	appendTorn(t, segs[len(segs)-1])
	code, out, errOut = runCLI("repair", "-v", dir)
	if code != 0 || !strings.Contains(out, "torn tail:         30 bytes") || !strings.Contains(out, "none found") {
		t.Fatalf("repair of a torn store: exit %d\n%s%s", code, out, errOut)
	}
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Pairs() != 160 {
		t.Fatalf("%d pairs, want 160", s.Pairs())
	}
}

func TestRepairErrors(t *testing.T) {
	dir := t.TempDir()
	writeRepairStore(t, dir, 160)
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no argument", []string{"repair"}, 2, "exactly one"},
		{"two arguments", []string{"repair", dir, dir}, 2, "exactly one"},
		{"bad flag", []string{"repair", "-x", dir}, 2, ""},
		{"missing directory", []string{"repair", filepath.Join(dir, "nope")}, 1, "not a store directory"},
		{"not a store", []string{"repair", t.TempDir()}, 1, "not a store directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.err) {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tt.code, out, errOut)
			}
		})
	}

	// A store that is open cannot be repaired underneath.
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, out, errOut := runCLI("repair", dir)
	if code != 1 || !strings.Contains(errOut, "open") {
		t.Fatalf("repair of an open store: exit %d; stdout %q stderr %q", code, out, errOut)
	}
}

// cidstore repair knows the snapshots: a damaged record below the newest
// snapshot's cut costs nothing, the records after it stay, the store
// opens with every pair, and verify agrees.
func TestRepairBelowTheSnapshot(t *testing.T) {
	dir := t.TempDir()
	const n, cut = 120, 80
	fillRepairStore(t, dir, store.Options{NoPreallocate: true}, n, cut)
	segs, _ := filepath.Glob(filepath.Join(store.Layout{Dir: dir}.WAL(), "*.wal"))
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	const frame = 17 + 2*cid.Size
	data[8+40*frame+30] ^= 1 // record 41
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("verify", dir); code != 1 || !strings.Contains(errOut, "checksum mismatch") {
		t.Fatalf("verify before repair: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runCLI("repair", dir)
	if code != 0 || !strings.Contains(out, "records dropped:   0 lost from the log") ||
		!strings.Contains(out, fmt.Sprintf("log kept:          LSN 42..%d", n)) {
		t.Fatalf("repair: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI("verify", dir); code != 0 {
		t.Fatalf("verify after repair: exit %d\n%s%s", code, out, errOut)
	}
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := uint64(1); i <= n; i++ {
		if k, v := repairPair(i); !s.Contains(k, v) {
			t.Fatalf("pair %d lost by repair", i)
		}
	}
}
