//go:build unix

package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// The kill test runs a cluster in a child process (the test binary
// itself) on loopback TCP with raft's state on disk, SIGKILLs it in the
// middle of a write load, reopens the directories in the parent and checks
// that every acknowledged write is on every node and that nothing appeared
// that was never written. Snapshots are taken every few dozen entries, so
// each recovery is a snapshot restore plus a log replay; kills accumulate
// in the same directories, so recovery also runs on top of recoveries.

const killEnv = "CIDSTORE_REPLICA_KILL_CHILD" // "dir|nodes|addrs|cycle|persistent|seed"

// killVariant is one configuration of the kill test.
type killVariant struct {
	name       string
	nodes      int
	persistent bool // the store has its own directory, SyncNever
}

func TestKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	variants := []killVariant{
		{"one node, in-memory store", 1, false},
		{"three nodes, in-memory stores", 3, false},
		{"one node, persistent store under SyncNever", 1, true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { killCycles(t, v, 4) })
	}
}

func killCycles(t *testing.T, v killVariant, kills int) {
	dir := t.TempDir()
	addrs := freeAddrs(t, v.nodes)
	seed := rand.Uint64()
	m := killModel{}
	for cycle := 0; cycle < kills; cycle++ {
		run := fmt.Sprintf("%s|%d|%s|%d|%v|%d", dir, v.nodes, strings.Join(addrs, ","), cycle, v.persistent, seed)
		acks := 300 + rand.IntN(300)
		if err := runKillChild(run, acks, m); err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		nodes := openKillCluster(t, dir, v, addrs, false)
		checkKill(t, nodes, m, cycle)
		closeKillCluster(t, nodes)
	}
	t.Logf("%d kills; %d pairs acknowledged, %d deletes acknowledged, %d triples acknowledged", kills, m.count('I'), m.count('D'), m.count('T'))
}

// freeAddrs returns n loopback addresses with ports free right now; the
// cluster keeps them across restarts, as raft's configuration names them.
func freeAddrs(t *testing.T, n int) []string {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Addr().String())
		defer l.Close()
	}
	return out
}

// killPair identifies one pair the child writes: cycle, goroutine, index.
type killPair struct {
	cycle, g, i int
}

func (p killPair) key() cid.CID {
	return cid.FromWords(0x4B, uint64(p.cycle), uint64(p.g), uint64(p.i/4)+1)
}
func (p killPair) val() cid.CID {
	return cid.FromWords(0x56, uint64(p.cycle), uint64(p.g), uint64(p.i)+1)
}

// triple is the triple the child writes for p (when it writes a triple
// rather than the pair).
func (p killPair) triple() store.Triple {
	return store.Triple{S: p.key(), P: cid.FromWords(0x50, 0, 0, 1), O: p.val()}
}

// killModel records, per pair, which reports arrived: 'i' insert issued,
// 'I' insert acknowledged, 'd' delete issued, 'D' delete acknowledged,
// 't' triple insert issued, 'T' triple insert acknowledged.
type killModel map[killPair]map[byte]bool

func (m killModel) count(kind byte) int {
	n := 0
	for _, r := range m {
		if r[kind] {
			n++
		}
	}
	return n
}

// runKillChild runs one child until it reported acks acknowledgements,
// then SIGKILLs it, recording every report in m.
func runKillChild(run string, acks int, m killModel) error {
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), killEnv+"="+run)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	killed := false
	timer := time.AfterFunc(waitLong, func() { cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(out)
	seen := 0
	for sc.Scan() {
		var kind byte
		var p killPair
		if _, err := fmt.Sscanf(sc.Text(), "R %c %d %d %d", &kind, &p.cycle, &p.g, &p.i); err != nil {
			continue // the test framework's own lines
		}
		if m[p] == nil {
			m[p] = map[byte]bool{}
		}
		m[p][kind] = true
		if kind == 'I' || kind == 'D' || kind == 'T' {
			if seen++; seen == acks && !killed {
				killed = true
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					return err
				}
			}
		}
	}
	err = cmd.Wait()
	if !killed {
		return fmt.Errorf("child ended after %d acknowledgements: %v\n%s", seen, err, stderr.String())
	}
	return nil
}

// TestKillChild is the child side of TestKill; it runs only when the
// parent sets killEnv, and writes until it is killed.
func TestKillChild(t *testing.T) {
	env := os.Getenv(killEnv)
	if env == "" {
		t.Skip("helper process for TestKill")
	}
	f := strings.Split(env, "|")
	nodes, _ := strconv.Atoi(f[1])
	cycle, _ := strconv.Atoi(f[3])
	seed, _ := strconv.ParseUint(f[5], 10, 64)
	v := killVariant{nodes: nodes, persistent: f[4] == "true"}
	cluster := openKillCluster(t, f[0], v, strings.Split(f[2], ","), cycle == 0)
	var mu sync.Mutex
	report := func(kind byte, p killPair) {
		mu.Lock() // one write per line
		fmt.Fprintf(os.Stdout, "R %c %d %d %d\n", kind, p.cycle, p.g, p.i)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			killWriter(t, cluster, cycle, g, rand.New(rand.NewPCG(seed, uint64(cycle*100+g))), report)
		}()
	}
	wg.Wait()
}

// killWriter inserts new pairs (one at a time or in small batches),
// deletes some it inserted (alone, or in a mixed batch with a new insert)
// and inserts triples, announcing each write before it is issued and
// again once it is acknowledged.
func killWriter(t *testing.T, nodes []*Node, cycle, g int, rng *rand.Rand, report func(byte, killPair)) {
	var live []killPair
	next := 0
	leader := func() *Node {
		for {
			for _, n := range nodes {
				if n.IsLeader() {
					return n
				}
			}
			pause()
		}
	}
	fresh := func(kind byte) killPair {
		p := killPair{cycle, g, next}
		next++
		report(kind, p)
		return p
	}
	for {
		switch op := rng.IntN(10); {
		case op < 2 && len(live) > 0:
			j := rng.IntN(len(live))
			p := live[j]
			live = append(live[:j], live[j+1:]...)
			report('d', p)
			if op == 0 {
				if killDo(leader, func(n *Node) error { return n.Delete(p.key(), p.val()) }) {
					report('D', p)
				}
				continue
			}
			q := fresh('i')
			ops := []store.PairOp{{Kind: store.OpDelete, Key: p.key(), Value: p.val()}, {Kind: store.OpInsert, Key: q.key(), Value: q.val()}}
			if killDo(leader, func(n *Node) error { return n.ApplyBatch(ops) }) {
				report('D', p)
				report('I', q)
				live = append(live, q)
			}
		case op < 4:
			batch := make([]killPair, 1+rng.IntN(3))
			ts := make([]store.Triple, len(batch))
			for j := range batch {
				batch[j] = fresh('t')
				ts[j] = batch[j].triple()
			}
			if killDo(leader, func(n *Node) error { _, err := n.InsertTriples(ts); return err }) {
				for _, p := range batch {
					report('T', p)
				}
			}
		default:
			batch := make([]killPair, 1+rng.IntN(3))
			pairs := make([]store.Pair, len(batch))
			for j := range batch {
				batch[j] = fresh('i')
				pairs[j] = store.Pair{Key: batch[j].key(), Value: batch[j].val()}
			}
			if killDo(leader, func(n *Node) error { return n.InsertBatch(pairs) }) {
				for _, p := range batch {
					report('I', p)
				}
				live = append(live, batch...)
			}
		}
	}
}

// killDo runs a write on the leader, retrying while it is refused without
// effect; it reports whether the write was acknowledged.
func killDo(leader func() *Node, write func(*Node) error) bool {
	for {
		err := write(leader())
		switch {
		case err == nil:
			return true
		case errors.Is(err, ErrUnknownOutcome):
			return false
		case definite(err):
			pause()
		default:
			panic(err)
		}
	}
}

// openKillCluster opens the nodes of a kill test directory; with
// bootstrap (the first child) the first node bootstraps and adds the
// others.
func openKillCluster(t *testing.T, dir string, v killVariant, addrs []string, bootstrap bool) []*Node {
	var nodes []*Node
	for i := range v.nodes {
		id := fmt.Sprintf("n%d", i+1)
		var st *store.Store
		var err error
		if v.persistent {
			c := store.DefaultConfig()
			c.Sync = store.SyncNever
			st, err = store.Open(filepath.Join(dir, id, "store"), store.Options{Config: &c, Shards: 4})
		} else {
			st, err = store.Open("", store.Options{InMemory: true, Shards: 4})
		}
		must(t, err)
		n, err := Open(Config{
			ID: id, Addr: addrs[i], Dir: filepath.Join(dir, id, "raft"), Store: st,
			HeartbeatTimeout: testHeartbeat, ElectionTimeout: testElection, LeaderLeaseTimeout: testLease,
			SnapshotThreshold: 32, SnapshotInterval: 20 * time.Millisecond, TrailingLogs: 16,
			Logger: testLogger(),
		})
		must(t, err)
		nodes = append(nodes, n)
	}
	t.Cleanup(func() { // after a failure: Close is idempotent
		for _, n := range nodes {
			n.Close()
			n.Store().Close()
		}
	})
	if bootstrap {
		must(t, nodes[0].Bootstrap())
		for _, n := range nodes[1:] {
			waitFor(t, "a leader to add a node", func() bool {
				err := nodes[0].AddVoter(context.Background(), n.ID(), n.Addr(), nil)
				return err == nil
			})
		}
	}
	return nodes
}

func closeKillCluster(t *testing.T, nodes []*Node) {
	for _, n := range nodes {
		must(t, n.Close())
		must(t, n.Store().Close())
	}
}

// checkKill waits for the reopened cluster to apply everything committed
// and checks every node against the model.
func checkKill(t *testing.T, nodes []*Node, m killModel, cycle int) {
	t.Helper()
	// A barrier in the new term applies every committed entry on the
	// leader; the followers then catch up to its commit index. Leadership
	// may move while the reopened nodes settle, so each try asks whoever
	// leads then.
	var (
		leader  *Node
		lastErr error
	)
	defer func() {
		if t.Failed() {
			t.Logf("last barrier error: %v", lastErr)
		}
	}()
	waitFor(t, "the leader to apply the log", func() bool {
		leader = leaderOf(t, nodes)
		_, lastErr = leader.Read(context.Background(), Linearizable)
		return lastErr == nil
	})
	commit := leader.Status().CommitIndex
	for _, n := range nodes {
		waitFor(t, n.ID()+" to apply the log", func() bool { return n.raft.AppliedIndex() >= commit })
		waitFor(t, n.ID()+"'s state machine to catch up", func() bool { return n.Status().AppliedIndex >= leader.Status().AppliedIndex })
	}
	for _, n := range nodes {
		st := n.Store()
		for p, r := range m {
			has := st.Contains(p.key(), p.val())
			switch {
			case r['D'] && has:
				t.Fatalf("cycle %d: %s: acknowledged delete of %v undone", cycle, n.ID(), p)
			case r['I'] && !r['d'] && !has:
				t.Fatalf("cycle %d: %s: acknowledged insert of %v lost", cycle, n.ID(), p)
			case r['T'] && !st.HasTriple(p.triple()):
				t.Fatalf("cycle %d: %s: acknowledged triple insert of %v lost", cycle, n.ID(), p)
			}
		}
		for tr := range st.Query(cid.Zero, cid.Zero, cid.Zero) {
			_, c, g, i := tr.O.Words()
			p := killPair{int(c), int(g), int(i) - 1}
			if tr != p.triple() || !m[p]['t'] {
				t.Fatalf("cycle %d: %s holds a triple never written", cycle, n.ID())
			}
		}
		for k, vs := range st.All() {
			for _, v := range vs {
				_, c, g, i := v.Words()
				p := killPair{int(c), int(g), int(i) - 1}
				if k != p.key() || !m[p]['i'] {
					t.Fatalf("cycle %d: %s holds a pair never written", cycle, n.ID())
				}
			}
		}
		// Every child logs hundreds of entries, far more than the
		// snapshot threshold, so from the second opening on recovery
		// starts from a snapshot.
		if s := n.Status(); cycle > 0 && (s.Restores == 0 || s.SnapshotIndex == 0) {
			t.Fatalf("cycle %d: %s recovered without a snapshot (%d restores, snapshot index %d)", cycle, n.ID(), s.Restores, s.SnapshotIndex)
		}
	}
}
