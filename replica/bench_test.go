//go:build unix

package replica

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// Benchmarks (BENCHMARKS.md has the numbers):
//
//	go test ./replica -run '^$' -bench 'Writes' -benchtime 5s -args -writes.rounds 3
//	go test ./replica -run '^$' -bench 'Failover' -benchtime 20x
//
// BenchmarkWrites compares acknowledged writes per second of a
// three-node cluster on loopback TCP with one store under SyncAlways on
// the same disk, in the same run: new random keys, one value each, either
// InsertBatch of 1000 pairs from 16 goroutines or single Inserts from 64
// goroutines. The cluster's leader runs in the benchmark's process, where
// the writers call it; its two followers are child processes (the test
// binary), as they would be on other machines, so each node has its own
// garbage collector. All three keep raft's log in bbolt files with fsync,
// use in-memory stores and the default timeouts. Metrics: pairs/s, and
// cpu-ns/pair, the CPU time of every process involved per acknowledged
// pair. -writes.rounds N alternates the two N times.

const (
	benchBatch        = 1000
	benchBatchWriters = 16
	benchOneWriters   = 64
)

var writeRounds = flag.Int("writes.rounds", 1, "rounds of BenchmarkWrites: each runs the store, then the cluster")

func BenchmarkWrites(b *testing.B) {
	for _, batch := range []int{benchBatch, 1} {
		writers := benchBatchWriters
		if batch == 1 {
			writers = benchOneWriters
		}
		for round := 1; round <= *writeRounds; round++ {
			b.Run(fmt.Sprintf("batch=%d/single-syncalways", batch), func(b *testing.B) {
				st, err := store.Open(b.TempDir(), store.Options{}) // SyncAlways
				must(b, err)
				defer st.Close()
				runWrites(b, writers, batch, st.Insert, st.InsertBatch)
			})
			b.Run(fmt.Sprintf("batch=%d/cluster3", batch), func(b *testing.B) {
				l, followers := processCluster(b)
				runWrites(b, writers, batch, l.Insert, l.InsertBatch, followers...)
				b.StopTimer()
				closeAll(b, []*Node{l})
				for _, f := range followers {
					f.stop(b)
				}
			})
		}
	}
}

var benchSeq atomic.Uint64

// benchPair returns a pair with a new random key.
func benchPair() store.Pair {
	i := benchSeq.Add(1)
	return store.Pair{Key: cid.FromWords(mix(i), mix(i+1), mix(i+2), mix(i+3)|1), Value: val(i)}
}

func mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// runWrites runs b.N writes (batches of size batch, or single inserts)
// from the given number of goroutines and reports pairs/s.
// The CPU time of the given child processes counts too.
func runWrites(b *testing.B, writers, batch int, insert func(k, v cid.CID) error, insertBatch func([]store.Pair) error, children ...*follower) {
	b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	cpuAll := func() time.Duration {
		d := cpuTime()
		for _, c := range children {
			d += c.cpu(b)
		}
		return d
	}
	start, cpu0, self0 := time.Now(), cpuAll(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		pairs := make([]store.Pair, batch)
		for pb.Next() {
			var err error
			if batch == 1 {
				p := benchPair()
				err = insert(p.Key, p.Value)
			} else {
				for i := range pairs {
					pairs[i] = benchPair()
				}
				err = insertBatch(pairs)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "pairs/s")
	pairs := float64(b.N * batch)
	all, self := cpuAll()-cpu0, cpuTime()-self0
	b.ReportMetric(float64(all.Nanoseconds())/pairs, "cpu-ns/pair")
	if len(children) > 0 {
		// The leader's process, and the mean of the followers'.
		b.ReportMetric(float64(self.Nanoseconds())/pairs, "leader-cpu-ns/pair")
		b.ReportMetric(float64((all-self).Nanoseconds())/pairs/float64(len(children)), "follower-cpu-ns/pair")
	}
}

// cpuTime returns the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// followerEnv, in a child's environment, makes TestBenchFollower run a
// follower: "id|dir".
const followerEnv = "CIDSTORE_REPLICA_BENCH_FOLLOWER"

// followerProfileEnv, set to a directory, makes each follower write a CPU
// profile there (ID.cpu.pprof), for the benchmark's -cpuprofile of the
// leader's process to be read beside.
const followerProfileEnv = "CIDSTORE_REPLICA_BENCH_PROFILE"

// TestBenchFollower is the child side of processCluster: it starts a node
// with an in-memory store, prints its raft address and runs until its
// standard input closes.
func TestBenchFollower(t *testing.T) {
	env := os.Getenv(followerEnv)
	if env == "" {
		t.Skip("helper process for BenchmarkWrites")
	}
	id, dir, _ := strings.Cut(env, "|")
	if prof := os.Getenv(followerProfileEnv); prof != "" {
		f, err := os.Create(filepath.Join(prof, id+".cpu.pprof"))
		must(t, err)
		must(t, pprof.StartCPUProfile(f))
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	st, err := store.Open("", store.Options{InMemory: true})
	must(t, err)
	n, err := Open(Config{ID: id, Addr: "127.0.0.1:0", Dir: dir, Store: st, Logger: testLogger()})
	must(t, err)
	fmt.Printf("FOLLOWER %s\n", n.Addr())
	io.Copy(io.Discard, os.Stdin)
	must(t, n.Close())
	must(t, st.Close())
}

// follower is a node in a child process.
type follower struct {
	id, addr string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
}

func startFollower(tb testing.TB, id, dir string) *follower {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchFollower$")
	cmd.Env = append(os.Environ(), followerEnv+"="+id+"|"+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(tb, err)
	out, err := cmd.StdoutPipe()
	must(tb, err)
	must(tb, cmd.Start())
	f := &follower{id: id, cmd: cmd, stdin: stdin}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "FOLLOWER "); ok {
			f.addr = addr
			break
		}
	}
	if f.addr == "" {
		f.stop(tb)
		tb.Fatal("follower process did not start")
	}
	go io.Copy(io.Discard, out)
	return f
}

// cpu returns the CPU time the follower's process used so far.
func (f *follower) cpu(tb testing.TB) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", f.cmd.Process.Pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name, which ends with ')': state is the
	// first, utime and stime are the 12th and 13th (in clock ticks).
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
}

func (f *follower) stop(tb testing.TB) {
	f.stdin.Close()
	if err := f.cmd.Wait(); err != nil {
		tb.Errorf("follower %s: %v", f.id, err)
	}
}

// processCluster starts a leader in this process and two followers in
// child processes, all with raft's state in temporary directories.
func processCluster(tb testing.TB) (*Node, []*follower) {
	tb.Helper()
	dir := tb.TempDir()
	leader := leaderOf(tb, diskCluster(tb, 1, Config{}))
	var fs []*follower
	for i := 2; i <= 3; i++ {
		f := startFollower(tb, fmt.Sprintf("n%d", i), filepath.Join(dir, fmt.Sprintf("n%d", i)))
		fs = append(fs, f)
		must(tb, leader.AddVoter(context.Background(), f.id, f.addr, nil))
	}
	return leader, fs
}

// diskCluster starts n nodes on loopback TCP with raft's state in
// temporary directories, bootstraps the first and adds the others.
// Fields of tmpl other than ID, Addr, Dir and Store apply to every node.
func diskCluster(tb testing.TB, n int, tmpl Config) []*Node {
	tb.Helper()
	var nodes []*Node
	dir := tb.TempDir()
	for i := range n {
		st, err := store.Open("", store.Options{InMemory: true})
		must(tb, err)
		cfg := tmpl
		if cfg.Logger == nil {
			cfg.Logger = testLogger()
		}
		cfg.ID, cfg.Addr, cfg.Dir, cfg.Store = fmt.Sprintf("n%d", i+1), "127.0.0.1:0", filepath.Join(dir, fmt.Sprintf("n%d", i+1)), st
		nd, err := Open(cfg)
		must(tb, err)
		nodes = append(nodes, nd)
	}
	must(tb, nodes[0].Bootstrap())
	for _, nd := range nodes[1:] {
		waitFor(tb, "the first node to add the others", func() bool {
			return nodes[0].AddVoter(context.Background(), nd.ID(), nd.Addr(), nil) == nil
		})
	}
	// Let every node learn the whole configuration: a follower that
	// has not yet seen a member's addition refuses that member its vote,
	// and a leader lost meanwhile would leave no majority to elect
	// anyone.
	l := leaderOf(tb, nodes)
	waitFor(tb, "every node to apply the configuration", func() bool {
		want := l.Status().AppliedIndex
		for _, nd := range nodes {
			if s := nd.Status(); len(s.Servers) != n || s.AppliedIndex < want {
				return false
			}
		}
		return true
	})
	return nodes
}

func leaderOf(tb testing.TB, nodes []*Node) *Node {
	tb.Helper()
	var l *Node
	waitFor(tb, "a leader", func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func closeAll(tb testing.TB, nodes []*Node) {
	for _, n := range nodes {
		if err := n.Close(); err != nil && err != ErrClosed {
			tb.Error(err)
		}
		n.Store().Close()
	}
}

// BenchmarkFailover measures, per iteration, the time from the leader's
// death (Close: raft stops and its connections drop) to the first write
// acknowledged by a new leader, on a three-node loopback cluster, with
// this package's default timeouts and, for comparison, with raft's own
// (1 s heartbeat and election timeouts). Each iteration starts a fresh
// cluster. It reports the mean and the worst in ms.
func BenchmarkFailover(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"defaults", Config{}},
		{"raft-defaults", Config{HeartbeatTimeout: time.Second, ElectionTimeout: time.Second, LeaderLeaseTimeout: 500 * time.Millisecond}},
	} {
		b.Run(tc.name, func(b *testing.B) { benchFailover(b, tc.cfg) })
	}
}

func benchFailover(b *testing.B, cfg Config) {
	var times []time.Duration
	for range b.N {
		b.StopTimer()
		nodes := diskCluster(b, 3, cfg)
		old := leaderOf(b, nodes)
		must(b, old.Insert(key(1), val(1)))
		b.StartTimer()
		start := time.Now()
		must(b, old.Close())
		i := uint64(0)
		var last error
		for done := false; !done; {
			if time.Since(start) > waitLong {
				for _, n := range nodes {
					if n != old {
						b.Logf("%+v", n.Status())
					}
				}
				b.Fatalf("no new leader acknowledged a write; last error: %v", last)
			}
			for _, n := range nodes {
				if n == old || !n.IsLeader() {
					continue
				}
				i++
				if last = n.Insert(key(2), val(i)); last == nil {
					done = true
					break
				}
			}
			if !done {
				pause()
			}
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		closeAll(b, nodes)
	}
	var sum time.Duration
	for _, d := range times {
		sum += d
	}
	b.ReportMetric(float64(sum.Milliseconds())/float64(len(times)), "ms/failover")
	b.ReportMetric(float64(slices.Max(times).Milliseconds()), "max-ms")
	b.ReportMetric(0, "ns/op")
}
