//go:build unix

package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/wal"
)

// The crash test runs the test binary itself as a child process that
// writes to a store with SyncAlways from many goroutines and reports every
// acknowledged write to the parent through a pipe. The parent SIGKILLs the
// child at a random moment, reopens the same directory and checks that
// every acknowledged write survived and that nothing appeared that was
// never written. Kills accumulate in one directory, so recovery runs on
// top of earlier recoveries and torn tails.

var (
	crashKills = flag.Int("crash.kills", 50, "number of child processes TestCrash kills")
	crashSeed  = flag.Uint64("crash.seed", 0, "master seed of TestCrash (0 picks one at random)")
	crashCycle = flag.Int("crash.cycle", 25, "kills per store directory; TestCrash then starts a fresh directory")
	crashMax   = flag.Int("crash.reports", 500, "largest number of reports TestCrash lets a child send before killing it")
)

const (
	crashEnv      = "CIDSTORE_CRASH_CHILD" // "dir,seed,segsize" in the child's environment
	crashWriters  = 64                     // concurrent writer goroutines in the child
	crashMaxBatch = 64                     // largest InsertBatch the child issues: most shards
	crashSegSize  = 64 << 10               // small segments, so rotation happens often
	crashPrealloc = 1 << 20                // every other directory: the smallest segments the WAL preallocates
	crashMagic    = 0xC1D5_70BE_C4A5_4ED0  // first word of every value the child writes
	crashRecSize  = 16                     // bytes per report
	crashRecMagic = 0xC5                   // byte 3 of every report
)

// Report kinds. Every write is announced before it is issued (lower case)
// and reported again once it returned nil (upper case), so the parent
// knows exactly which write of each goroutine may be in flight at a kill.
const (
	repInsertIntent = 'i' // pairs i .. i+n-1 of goroutine g are about to be inserted
	repInsertAck    = 'I' // ... and were acknowledged
	repDeleteIntent = 'd' // pair i of goroutine g is about to be deleted
	repDeleteAck    = 'D' // ... and the delete was acknowledged
)

// report is one fixed-size message from the child:
//
//	[0] kind  [1] goroutine  [2] n  [3] crashRecMagic  [4:8] zero  [8:16] i (little endian)
type report struct {
	kind byte
	g    uint8
	n    uint8
	i    uint64
}

func (r report) encode() (b [crashRecSize]byte) {
	b[0], b[1], b[2], b[3] = r.kind, r.g, r.n, crashRecMagic
	binary.LittleEndian.PutUint64(b[8:], r.i)
	return b
}

func decodeReport(b []byte) (report, error) {
	r := report{kind: b[0], g: b[1], n: b[2], i: binary.LittleEndian.Uint64(b[8:])}
	switch {
	case b[3] != crashRecMagic || binary.LittleEndian.Uint32(b[4:8]) != 0:
		return r, fmt.Errorf("bad report framing % x", b)
	case r.g >= crashWriters:
		return r, fmt.Errorf("report names goroutine %d", r.g)
	case r.n < 1 || r.n > crashMaxBatch:
		return r, fmt.Errorf("report of %d pairs", r.n)
	case r.kind != repInsertIntent && r.kind != repInsertAck && r.kind != repDeleteIntent && r.kind != repDeleteAck:
		return r, fmt.Errorf("unknown report kind %q", r.kind)
	}
	return r, nil
}

func crashMix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// crashKey is the key of pair i of goroutine g in a child run with seed.
// Four consecutive pairs share a key, so keys hold several values.
func crashKey(seed uint64, g uint8, i uint64) cid.CID {
	x := crashMix(seed ^ crashMix(uint64(g)<<56^i>>2))
	return cid.FromWords(x, crashMix(x), crashMix(x+1), crashMix(x+2)|1)
}

// crashValue is the value of pair i of goroutine g: it encodes all three.
func crashValue(seed uint64, g uint8, i uint64) cid.CID {
	return cid.FromWords(crashMagic, seed, uint64(g), i)
}

// TestCrashChild is the child side of TestCrash; it only runs when the
// parent sets crashEnv. It never returns: it writes until it is killed.
func TestCrashChild(t *testing.T) {
	env := os.Getenv(crashEnv)
	if env == "" {
		t.Skip("helper process for TestCrash")
	}
	die := childDie("crash child")
	f := strings.Split(env, ",")
	if len(f) != 3 {
		die("bad %s=%q", crashEnv, env)
	}
	dir := f[0]
	seed, err := strconv.ParseUint(f[1], 10, 64)
	segSize, err2 := strconv.ParseInt(f[2], 10, 64)
	if err != nil || err2 != nil {
		die("bad %s=%q", crashEnv, env)
	}
	out := os.NewFile(3, "reports")
	s, err := Open(dir, Options{Config: withConfig(func(c *Config) { c.Sync = SyncAlways }), SegmentSize: segSize})
	if err != nil {
		die("open: %v", err)
	}
	var mu sync.Mutex
	send := func(r report) {
		b := r.encode()
		mu.Lock()
		_, err := out.Write(b[:])
		mu.Unlock()
		if err != nil {
			// The parent is gone; there is nobody to report to.
			os.Exit(4)
		}
	}
	// Checkpoints cut while batches are queued on their shards and
	// applied by other writers: the cut must take each whole.
	go func() {
		for range time.Tick(20 * time.Millisecond) {
			if err := s.Checkpoint(context.Background()); err != nil {
				die("checkpoint: %v", err)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range uint8(crashWriters) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			crashWriter(s, seed, g, send, die)
		}()
	}
	wg.Wait()
}

// crashWriter is one writer goroutine of the child: it inserts fresh pairs
// one at a time or in batches, re-inserts acknowledged pairs (no-ops) and
// deletes acknowledged pairs, reporting each write before and after.
func crashWriter(s *Store, seed uint64, g uint8, send func(report), die func(string, ...any)) {
	rng := rand.New(rand.NewPCG(seed, uint64(g)))
	var next uint64 // index of the next fresh pair
	var acked []uint64
	pairs := make([]Pair, 0, crashMaxBatch)
	for {
		r := rng.IntN(100)
		switch {
		case r < 10 && len(acked) > 0:
			j := rng.IntN(len(acked))
			i := acked[j]
			send(report{repDeleteIntent, g, 1, i})
			if err := s.Delete(crashKey(seed, g, i), crashValue(seed, g, i)); err != nil {
				die("goroutine %d: Delete pair %d: %v", g, i, err)
			}
			acked[j] = acked[len(acked)-1]
			acked = acked[:len(acked)-1]
			send(report{repDeleteAck, g, 1, i})
		case r < 14 && len(acked) > 0:
			i := acked[rng.IntN(len(acked))]
			send(report{repInsertIntent, g, 1, i})
			if err := s.Insert(crashKey(seed, g, i), crashValue(seed, g, i)); err != nil {
				die("goroutine %d: Insert of present pair %d: %v", g, i, err)
			}
			send(report{repInsertAck, g, 1, i})
		case r < 35:
			n := 2 + rng.IntN(crashMaxBatch-1)
			pairs = pairs[:0]
			for i := next; i < next+uint64(n); i++ {
				pairs = append(pairs, Pair{crashKey(seed, g, i), crashValue(seed, g, i)})
			}
			send(report{repInsertIntent, g, uint8(n), next})
			if err := s.InsertBatch(pairs); err != nil {
				die("goroutine %d: InsertBatch pairs %d+%d: %v", g, next, n, err)
			}
			send(report{repInsertAck, g, uint8(n), next})
			for range n {
				acked = append(acked, next)
				next++
			}
		default:
			send(report{repInsertIntent, g, 1, next})
			if err := s.Insert(crashKey(seed, g, next), crashValue(seed, g, next)); err != nil {
				die("goroutine %d: Insert pair %d: %v", g, next, err)
			}
			send(report{repInsertAck, g, 1, next})
			acked = append(acked, next)
			next++
		}
	}
}

// pairID names one pair the children may have written.
type pairID struct {
	seed uint64
	g    uint8
	i    uint64
}

// Pair states in the parent's model.
const (
	statePresent = iota + 1 // acknowledged insert: must survive
	stateDeleted            // acknowledged delete: must stay gone
)

// crashModel is what the parent knows about one store directory.
type crashModel struct {
	seeds map[uint64]bool // seeds of every child run in the directory
	pairs map[pairID]int8 // state of every pair ever acknowledged
	acks  int64           // acknowledged writes reported, in total
	lost  int64           // acknowledged pairs missing after a crash
	extra int64           // in-flight inserts found applied after a crash
	gone  int64           // in-flight deletes found applied after a crash
	check int64           // pair checks made after crashes, in total
	segs  int             // most WAL segments seen in the directory
	// segSize is the directory's WAL segment size: crashSegSize or
	// crashPrealloc, every other directory.
	segSize  int64
	prealloc int // most preallocated (full-size) WAL segments seen
}

// childRun is the parent's view of one child while it runs.
type childRun struct {
	seed    uint64
	reports int
	// In-flight writes per goroutine: announced and not acknowledged.
	insFrom [crashWriters]uint64
	insN    [crashWriters]uint8
	del     [crashWriters]uint64
	delOn   [crashWriters]bool
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes; skipped in -short mode")
	}
	if os.Getenv(crashEnv) != "" {
		t.Skip("inside a crash child")
	}
	master := *crashSeed
	if master == 0 {
		master = rand.Uint64()
	}
	t.Logf("crash test: master seed %d, %d kills (replay with -crash.seed=%d)", master, *crashKills, master)
	rng := rand.New(rand.NewPCG(master, 0xC4A5))
	start := time.Now()
	var dir string
	var m *crashModel
	var total crashModel
	var tornRecoveries int
	for kill := 0; kill < *crashKills; kill++ {
		if kill%max(*crashCycle, 1) == 0 {
			if m != nil {
				m.checkPrealloc(t)
				total.add(m)
			}
			dir = filepath.Join(t.TempDir(), "db")
			m = &crashModel{seeds: map[uint64]bool{}, pairs: map[pairID]int8{}, segSize: crashSegSize}
			if kill/max(*crashCycle, 1)%2 == 1 {
				m.segSize = crashPrealloc
			}
		}
		seed := rng.Uint64() | 1
		for m.seeds[seed] {
			seed++
		}
		m.seeds[seed] = true
		where := fmt.Sprintf("master seed %d, kill %d, child seed %d", master, kill, seed)
		run, err := runCrashChild(dir, seed, rng, m)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		// Now and then the kill also leaves a torn write, as a power
		// cut would: part of a record that was never acknowledged.
		var tear int64
		if rng.IntN(5) == 0 {
			if tear, err = tearTail(dir, rng); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		}
		torn, err := checkCrash(dir, run, m)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if torn < tear {
			t.Fatalf("%s: recovery cut %d torn bytes, want at least the %d appended", where, torn, tear)
		}
		if torn > 0 {
			tornRecoveries++
		}
	}
	m.checkPrealloc(t)
	total.add(m)
	present := 0
	for _, st := range total.pairs {
		if st == statePresent {
			present++
		}
	}
	t.Logf("crash test: %d kills in %v; %d acknowledged writes (%d pairs present, %d deleted at the end); "+
		"%d pair checks after kills, %d acknowledged pairs lost; %d in-flight inserts and %d in-flight deletes "+
		"found applied; %d recoveries cut a torn tail; up to %d WAL segments per directory, "+
		"up to %d of them preallocated",
		*crashKills, time.Since(start).Round(time.Millisecond), total.acks, present, len(total.pairs)-present,
		total.check, total.lost, total.extra, total.gone, tornRecoveries, total.segs, total.prealloc)
}

// checkPrealloc fails the test if a directory with preallocating segment
// sizes rotated three times without ever writing to a preallocated
// segment. (How far a directory gets depends on the machine: under -race
// the children write a fraction as much.)
func (m *crashModel) checkPrealloc(t *testing.T) {
	if m.segSize == crashPrealloc && m.segs >= 4 && m.prealloc == 0 {
		t.Errorf("a store directory reached %d WAL segments of %d bytes and none was preallocated", m.segs, m.segSize)
	}
}

func (m *crashModel) add(o *crashModel) {
	if m.pairs == nil {
		m.pairs = map[pairID]int8{}
	}
	for p, st := range o.pairs {
		m.pairs[p] = st
	}
	m.acks += o.acks
	m.lost += o.lost
	m.extra += o.extra
	m.gone += o.gone
	m.check += o.check
	m.segs = max(m.segs, o.segs)
	m.prealloc = max(m.prealloc, o.prealloc)
}

// runCrashChild starts a child writing to dir, reads its reports into the
// model and kills it at a moment drawn from rng.
func runCrashChild(dir string, seed uint64, rng *rand.Rand, m *crashModel) (*childRun, error) {
	// Most children are killed after a random number of reports; some by
	// a short timer alone, which often hits them while they start up or
	// recover. The timer also bounds how long any child runs.
	killAfter := 1 + rng.IntN(*crashMax)
	delay := 10 * time.Second
	if rng.IntN(10) == 0 {
		killAfter = -1
		delay = time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", crashEnv, dir, seed, m.segSize))
	cmd.ExtraFiles = []*os.File{pw}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, err
	}
	pw.Close()
	var once sync.Once
	kill := func() { once.Do(func() { cmd.Process.Kill() }) }
	timer := time.AfterFunc(delay, kill)

	run := &childRun{seed: seed}
	rd := bufio.NewReaderSize(pr, 64<<10)
	var buf [crashRecSize]byte
	var readErr error
	for {
		if _, err := io.ReadFull(rd, buf[:]); err != nil {
			// io.ErrUnexpectedEOF: a partial report at the kill; ignored.
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				readErr = err
			}
			break
		}
		r, err := decodeReport(buf[:])
		if err == nil {
			err = run.apply(r, m)
		}
		if err != nil {
			readErr = fmt.Errorf("report %d: %v", run.reports, err)
			kill()
			break
		}
		run.reports++
		if run.reports == killAfter {
			kill()
		}
	}
	if readErr != nil {
		io.Copy(io.Discard, rd) // let the child die without blocking on the pipe
	}
	timer.Stop()
	kill()
	werr := cmd.Wait()
	if readErr != nil {
		return nil, readErr
	}
	if cmd.ProcessState.ExitCode() != -1 {
		return nil, fmt.Errorf("child exited by itself (%v) instead of being killed; stderr:\n%s", werr, stderr.String())
	}
	return run, nil
}

// apply updates the model with one report of the running child.
func (run *childRun) apply(r report, m *crashModel) error {
	g := r.g
	switch r.kind {
	case repInsertIntent:
		if run.insN[g] != 0 || run.delOn[g] {
			return fmt.Errorf("goroutine %d announced a write with one in flight", g)
		}
		run.insFrom[g], run.insN[g] = r.i, r.n
	case repInsertAck:
		if run.insN[g] != r.n || run.insFrom[g] != r.i {
			return fmt.Errorf("goroutine %d acknowledged insert %d+%d, announced %d+%d", g, r.i, r.n, run.insFrom[g], run.insN[g])
		}
		run.insN[g] = 0
		m.acks++
		for i := r.i; i < r.i+uint64(r.n); i++ {
			p := pairID{run.seed, g, i}
			if m.pairs[p] == stateDeleted {
				return fmt.Errorf("pair %v inserted again after its delete", p)
			}
			m.pairs[p] = statePresent
		}
	case repDeleteIntent:
		if run.insN[g] != 0 || run.delOn[g] {
			return fmt.Errorf("goroutine %d announced a write with one in flight", g)
		}
		run.del[g], run.delOn[g] = r.i, true
	case repDeleteAck:
		if !run.delOn[g] || run.del[g] != r.i {
			return fmt.Errorf("goroutine %d acknowledged a delete it did not announce", g)
		}
		run.delOn[g] = false
		m.acks++
		p := pairID{run.seed, g, r.i}
		if m.pairs[p] != statePresent {
			return fmt.Errorf("pair %v deleted before it was acknowledged", p)
		}
		m.pairs[p] = stateDeleted
	}
	return nil
}

// tearTail appends a torn write to the last WAL segment in dir: up to 100
// zeros or random bytes, or a proper prefix of a record frame. It returns
// how many bytes recovery must cut: none for zeros alone, which read as the
// unused end of a preallocated segment.
func tearTail(dir string, rng *rand.Rand) (int64, error) {
	segs, err := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	if err != nil || len(segs) == 0 {
		return 0, err
	}
	var tail []byte
	switch rng.IntN(3) {
	case 0:
		tail = make([]byte, 1+rng.IntN(100))
	case 1:
		var payload [2 * cid.Size]byte
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		frame := wal.AppendRecord(nil, 1<<40, opAdd, payload[:])
		tail = frame[:1+rng.IntN(len(frame)-1)]
	default:
		tail = make([]byte, 1+rng.IntN(100))
		for i := range tail {
			tail[i] = byte(rng.Uint32())
		}
	}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, err
	}
	_, err = f.Write(tail)
	n := int64(len(tail))
	if !slices.ContainsFunc(tail, func(b byte) bool { return b != 0 }) {
		n = 0 // zeros after the last record are the clean end of a segment
	}
	return n, errors.Join(err, f.Close())
}

// checkCrash reopens dir after run was killed and compares the store with
// the model: every acknowledged insert is present unless its delete was
// acknowledged; a delete in flight may or may not have landed; an insert in
// flight landed whole (a batch is atomic) or not at all; nothing else is
// present. What the store shows for in-flight writes becomes the model's
// state, as the next child builds on it. It returns the torn bytes cut.
func checkCrash(dir string, run *childRun, m *crashModel) (int64, error) {
	s, err := Open(dir, Options{SegmentSize: m.segSize})
	if err != nil {
		return 0, fmt.Errorf("reopen after kill: %w", err)
	}
	defer s.Close()
	torn := s.Stats().Recovery.TornBytes
	segs, _ := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	m.segs = max(m.segs, len(segs))
	full := 0
	for _, p := range segs {
		if fi, err := os.Stat(p); err == nil && m.segSize == crashPrealloc && fi.Size() == crashPrealloc {
			full++
		}
	}
	m.prealloc = max(m.prealloc, full)

	// In-flight deletes: both outcomes are fine; adopt what recovery shows.
	for g := range uint8(crashWriters) {
		if !run.delOn[g] {
			continue
		}
		p := pairID{run.seed, g, run.del[g]}
		if m.pairs[p] != statePresent {
			return torn, fmt.Errorf("in-flight delete of %v that is not present in the model", p)
		}
		k, v := crashKey(p.seed, p.g, p.i), crashValue(p.seed, p.g, p.i)
		if !s.Contains(k, v) {
			m.pairs[p] = stateDeleted
			m.gone++
		}
	}
	// In-flight inserts: all of the call's pairs or none. Pairs that were
	// acknowledged before (a re-insert) are checked as acknowledged.
	for g := range uint8(crashWriters) {
		n := run.insN[g]
		if n == 0 {
			continue
		}
		var fresh, found int
		for i := run.insFrom[g]; i < run.insFrom[g]+uint64(n); i++ {
			p := pairID{run.seed, g, i}
			if _, ok := m.pairs[p]; ok {
				continue
			}
			fresh++
			if s.Contains(crashKey(p.seed, p.g, p.i), crashValue(p.seed, p.g, p.i)) {
				found++
				m.pairs[p] = statePresent
			}
		}
		if found != 0 && found != fresh {
			return torn, fmt.Errorf("in-flight insert of goroutine %d, pairs %d+%d: %d of %d new pairs present (not atomic)",
				g, run.insFrom[g], n, found, fresh)
		}
		if found > 0 {
			m.extra++
		}
	}
	// Every pair of the model.
	want := 0
	var lost []pairID
	for p, st := range m.pairs {
		has := s.Contains(crashKey(p.seed, p.g, p.i), crashValue(p.seed, p.g, p.i))
		switch {
		case st == statePresent && !has:
			lost = append(lost, p)
		case st == stateDeleted && has:
			return torn, fmt.Errorf("pair %v present after its delete was acknowledged", p)
		}
		if st == statePresent {
			want++
		}
	}
	m.check += int64(len(m.pairs))
	if len(lost) > 0 {
		m.lost += int64(len(lost))
		return torn, fmt.Errorf("%d acknowledged pairs lost, e.g. %+v", len(lost), lost[0])
	}
	// Everything in the store: well-formed, written by a child of this
	// directory under the right key, and known to the model.
	got := 0
	for k, vs := range s.All() {
		for _, v := range vs {
			magic, seed, g, i := v.Words()
			p := pairID{seed, uint8(g), i}
			switch {
			case magic != crashMagic || g >= crashWriters:
				return torn, fmt.Errorf("value %s under key %s was never written", v.EString(), k.EString())
			case !m.seeds[seed]:
				return torn, fmt.Errorf("value %s names seed %d, which no child used", v.EString(), seed)
			case crashKey(seed, uint8(g), i) != k:
				return torn, fmt.Errorf("pair %+v stored under key %s, want %s", p, k.EString(), crashKey(seed, uint8(g), i).EString())
			case m.pairs[p] != statePresent:
				return torn, fmt.Errorf("pair %+v present but never acknowledged nor in flight (model state %d)", p, m.pairs[p])
			}
			got++
		}
	}
	if got != want || s.Pairs() != want {
		return torn, fmt.Errorf("store holds %d pairs (Pairs() = %d), model %d", got, s.Pairs(), want)
	}
	if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
		return torn, fmt.Errorf("close after check: %w", err)
	}
	return torn, nil
}
