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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
)

// TestTripleCrash is the crash test of triple batches: a child process
// applies atomic triple batches (each inserts a fresh group of triples and
// may delete an older acknowledged group in the same call) from several
// goroutines under SyncAlways while another goroutine checkpoints, and
// reports each batch before it is issued and after it is acknowledged. The
// parent SIGKILLs it at a random moment, reopens the directory and checks:
// every acknowledged group is in all three indexes (HasTriple and the SP?,
// ?PO and S?O patterns), every acknowledged delete is gone, a batch in
// flight at the kill is there whole or not at all, and no triple exists
// that no batch wrote. Kills accumulate in one directory.

var tripleCrashKills = flag.Int("triplecrash.kills", 12, "number of child processes TestTripleCrash kills")

const (
	tripleCrashEnv     = "CIDSTORE_TRIPLE_CRASH_CHILD" // "dir,seed"
	tripleCrashWriters = 8
	tripleCrashGroup   = 6       // triples per group
	tripleCrashMagic   = 0x7121E // first word of every subject
)

// tripleCrashTriple is triple j of group b of goroutine g in a child run
// with seed. Predicates come from a set of 3, so POS keys hold large
// value sets; subjects are shared by the triples of a group.
func tripleCrashTriple(seed uint64, g uint8, b uint64, j int) Triple {
	return Triple{
		S: cid.FromWords(tripleCrashMagic, seed, uint64(g), b),
		P: cid.FromWords(tripleCrashMagic+1, 0, 0, uint64(j%3)+1),
		O: cid.FromWords(tripleCrashMagic+2, seed, uint64(g)<<32|uint64(j), b),
	}
}

// A report is 24 bytes: kind ('b' intent, 'B' ack), goroutine, 6 zero
// bytes, the group inserted, the group deleted (or noGroup for none).
type tripleReport struct {
	seed uint64 // the child's (not sent)
	ack  bool
	g    uint8
	ins  uint64
	del  uint64
}

const noGroup = ^uint64(0)

func TestTripleCrashChild(t *testing.T) {
	env := os.Getenv(tripleCrashEnv)
	if env == "" {
		t.Skip("helper process for TestTripleCrash")
	}
	die := childDie("triple crash child")
	f := strings.Split(env, ",")
	seed, err := strconv.ParseUint(f[len(f)-1], 10, 64)
	if len(f) != 2 || err != nil {
		die("bad %s=%q", tripleCrashEnv, env)
	}
	out := os.NewFile(3, "reports")
	s, err := Open(f[0], Options{SegmentSize: 64 << 10, Config: withConfig(func(c *Config) { c.InlineValues = 4 })})
	if err != nil {
		die("open: %v", err)
	}
	var mu sync.Mutex
	send := func(ack bool, g uint8, ins, del uint64) {
		var b [24]byte
		b[0], b[1] = 'b', g
		if ack {
			b[0] = 'B'
		}
		binary.LittleEndian.PutUint64(b[8:], ins)
		binary.LittleEndian.PutUint64(b[16:], del)
		mu.Lock()
		_, err := out.Write(b[:])
		mu.Unlock()
		if err != nil {
			os.Exit(4)
		}
	}
	go func() {
		for {
			if err := s.Checkpoint(context.Background()); err != nil {
				die("checkpoint: %v", err)
			}
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for g := range uint8(tripleCrashWriters) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			var live []uint64 // acknowledged groups not deleted
			for b := uint64(0); ; b++ {
				ops := make([]TripleOp, 0, 2*tripleCrashGroup)
				for j := range tripleCrashGroup {
					ops = append(ops, TripleOp{Triple: tripleCrashTriple(seed, g, b, j)})
				}
				del := noGroup
				if len(live) > 0 && rng.IntN(3) == 0 {
					k := rng.IntN(len(live))
					del = live[k]
					live[k] = live[len(live)-1]
					live = live[:len(live)-1]
					for j := range tripleCrashGroup {
						ops = append(ops, TripleOp{Delete: true, Triple: tripleCrashTriple(seed, g, del, j)})
					}
				}
				send(false, g, b, del)
				if _, err := s.ApplyTriples(ops); err != nil {
					die("goroutine %d group %d: %v", g, b, err)
				}
				send(true, g, b, del)
				live = append(live, b)
			}
		}()
	}
	wg.Wait()
}

// groupID names a group of triples.
type groupID struct {
	seed, b uint64
	g       uint8
}

func TestTripleCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes; skipped in -short mode")
	}
	if os.Getenv(tripleCrashEnv) != "" {
		t.Skip("inside a crash child")
	}
	master := rand.Uint64()
	t.Logf("triple crash test: master seed %d", master)
	rng := rand.New(rand.NewPCG(master, 7))
	dir := filepath.Join(t.TempDir(), "db")
	present := map[groupID]bool{} // acknowledged groups: true present, false deleted
	acks, inflight := 0, 0
	for kill := range *tripleCrashKills {
		seed := rng.Uint64() | 1
		pending, n, err := runTripleCrashChild(dir, seed, 1+rng.IntN(400), present)
		if err != nil {
			t.Fatalf("kill %d (seed %d): %v", kill, seed, err)
		}
		acks += n
		inflight += len(pending)
		if err := checkTripleCrash(dir, present, pending); err != nil {
			t.Fatalf("kill %d (seed %d): %v", kill, seed, err)
		}
	}
	t.Logf("triple crash test: %d kills, %d acknowledged batches, %d in flight at kills, %d groups known",
		*tripleCrashKills, acks, inflight, len(present))
}

// runTripleCrashChild runs a child until it has sent killAfter reports (or
// 10 s passed), kills it, folds acknowledged batches into present and
// returns the batches in flight at the kill.
func runTripleCrashChild(dir string, seed uint64, killAfter int, present map[groupID]bool) ([]tripleReport, int, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	defer pr.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTripleCrashChild$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", tripleCrashEnv, dir, seed))
	cmd.ExtraFiles = []*os.File{pw}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, 0, err
	}
	pw.Close()
	var once sync.Once
	kill := func() { once.Do(func() { cmd.Process.Kill() }) }
	timer := time.AfterFunc(10*time.Second, kill)
	defer timer.Stop()
	var intent [tripleCrashWriters]*tripleReport
	rd := bufio.NewReader(pr)
	var buf [24]byte
	reports, acks := 0, 0
	for {
		if _, err := io.ReadFull(rd, buf[:]); err != nil {
			break // EOF or a partial report at the kill
		}
		r := tripleReport{ack: buf[0] == 'B', g: buf[1], ins: binary.LittleEndian.Uint64(buf[8:]), del: binary.LittleEndian.Uint64(buf[16:])}
		if (buf[0] != 'b' && buf[0] != 'B') || r.g >= tripleCrashWriters {
			kill()
			return nil, 0, fmt.Errorf("bad report % x", buf)
		}
		if r.ack {
			present[groupID{seed, r.ins, r.g}] = true
			if r.del != noGroup {
				present[groupID{seed, r.del, r.g}] = false
			}
			intent[r.g] = nil
			acks++
		} else {
			intent[r.g] = &r
		}
		if reports++; reports == killAfter {
			kill()
		}
	}
	kill()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != -1 {
			return nil, 0, fmt.Errorf("child: %v: %s", err, stderr.String())
		}
	}
	var pending []tripleReport
	for _, r := range intent {
		if r != nil {
			r.seed = seed
			pending = append(pending, *r)
		}
	}
	return pending, acks, nil
}

// groupState returns how many of a group's triples the store holds, and
// checks that each is in all three indexes.
func groupState(s *Store, seed uint64, g uint8, b uint64) (int, error) {
	n := 0
	for j := range tripleCrashGroup {
		t := tripleCrashTriple(seed, g, b, j)
		has := s.HasTriple(t)
		inPOS, inOSP := false, false
		for x := range s.Query(cid.Zero, t.P, t.O) {
			inPOS = inPOS || x == t
		}
		for x := range s.Query(t.S, cid.Zero, t.O) {
			inOSP = inOSP || x == t
		}
		if has != inPOS || has != inOSP {
			return 0, fmt.Errorf("triple %d of group %d/%d: in SPO %v, POS %v, OSP %v", j, g, b, has, inPOS, inOSP)
		}
		if has {
			n++
		}
	}
	return n, nil
}

func checkTripleCrash(dir string, present map[groupID]bool, pending []tripleReport) error {
	s, err := Open(dir, Options{})
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer s.Close()
	if err := s.triples.Check(); err != nil {
		return err
	}
	// A batch in flight at the kill: its insert and its delete took
	// effect together or not at all.
	for _, p := range pending {
		n, err := groupState(s, p.seed, p.g, p.ins)
		if err != nil {
			return err
		}
		if n != 0 && n != tripleCrashGroup {
			return fmt.Errorf("in-flight group %d/%d is partly present", p.g, p.ins)
		}
		if p.del != noGroup {
			d, err := groupState(s, p.seed, p.g, p.del)
			if err != nil {
				return err
			}
			if (n == tripleCrashGroup) != (d == 0) {
				return fmt.Errorf("in-flight batch %d/%d applied in part: %d inserted, %d of the deleted group left", p.g, p.ins, n, d)
			}
		}
		if n > 0 {
			present[groupID{p.seed, p.ins, p.g}] = true
			if p.del != noGroup {
				present[groupID{p.seed, p.del, p.g}] = false
			}
		}
	}
	want := 0
	for id, live := range present {
		n, err := groupState(s, id.seed, id.g, id.b)
		if err != nil {
			return err
		}
		switch {
		case live && n != tripleCrashGroup:
			return fmt.Errorf("acknowledged group %d/%d: %d of %d triples left", id.g, id.b, n, tripleCrashGroup)
		case !live && n != 0:
			return fmt.Errorf("acknowledged delete of group %d/%d undone: %d triples", id.g, id.b, n)
		}
		want += n
	}
	// No phantoms: every triple belongs to a known group.
	count := 0
	for t := range s.Query(cid.Zero, cid.Zero, cid.Zero) {
		count++
		w0, seed, g, b := t.S.Words()
		if w0 != tripleCrashMagic {
			return fmt.Errorf("phantom triple %v", t)
		}
		if _, ok := present[groupID{seed, b, uint8(g)}]; !ok {
			return fmt.Errorf("triple of unknown group %d/%d", g, b)
		}
	}
	if count != s.TripleCount() || count != want {
		return fmt.Errorf("%d triples walked, TripleCount %d, %d expected", count, s.TripleCount(), want)
	}
	return s.Close()
}
