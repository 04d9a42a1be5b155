package replica

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
)

// TestLinearizable records a concurrent history of many clients adding,
// removing and testing a few values of a few keys through a three-node
// cluster while its leader is killed again and again (the node stops, its
// in-memory store is lost, and it restarts from raft's log and snapshots),
// and checks with porcupine that the history is linearizable. Each client
// also inserts pairs of its own that are never deleted; every one that
// was acknowledged must be on every node at the end. scripts/linearizable
// runs it with more kills.
var (
	linKills   = flag.Int("lin.kills", 20, "leader kills in TestLinearizable")
	linClients = flag.Int("lin.clients", 8, "concurrent clients in TestLinearizable")
	linSeed    = flag.Uint64("lin.seed", 0, "seed of TestLinearizable (0: random)")
	linCheck   = flag.Duration("lin.check", 2*time.Minute, "time porcupine may take per history")
)

const (
	linKeys   = 6 // keys the checked operations touch
	linValues = 4 // values per key
)

// linInput is one operation on key k: add, remove or contains value v;
// with triple, on the triple (k, linPred, v) instead of the pair.
type linInput struct {
	op     uint8 // linAdd, linRemove, linContains
	k, v   uint8
	triple bool
}

const (
	linAdd = iota
	linRemove
	linContains
)

// linOutput is what the operation returned; unknown marks a write whose
// outcome the cluster could not tell (ErrUnknownOutcome).
type linOutput struct {
	present bool
	unknown bool
}

// linModel is a set of values per key; a key's state is a bit mask.
var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		parts := make([][]porcupine.Operation, 2*linKeys)
		for _, op := range history {
			in := op.Input.(linInput)
			k := int(in.k)
			if in.triple {
				k += linKeys
			}
			parts[k] = append(parts[k], op)
		}
		return parts
	},
	Init: func() any { return uint8(0) },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(uint8), input.(linInput), output.(linOutput)
		bit := uint8(1) << in.v
		switch in.op {
		case linAdd:
			return true, s | bit
		case linRemove:
			return true, s &^ bit
		}
		return out.present == (s&bit != 0), s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		name := [...]string{"add", "remove", "contains"}[in.op]
		if in.triple {
			name += "-triple"
		}
		switch {
		case out.unknown:
			return fmt.Sprintf("%s(k%d, v%d) -> ?", name, in.k, in.v)
		case in.op == linContains:
			return fmt.Sprintf("%s(k%d, v%d) -> %v", name, in.k, in.v, out.present)
		}
		return fmt.Sprintf("%s(k%d, v%d)", name, in.k, in.v)
	},
}

func linKey(k uint8) cid.CID { return cid.FromWords(0x11, 0, 0, uint64(k)+1) }
func linVal(v uint8) cid.CID { return cid.FromWords(0x22, 0, 0, uint64(v)+1) }

var linPred = cid.FromWords(0x55, 0, 0, 1)

// ledger pairs: client g's i-th insert-only pair.
func ledgerKey(g int) cid.CID        { return cid.FromWords(0x33, 0, uint64(g), 1) }
func ledgerVal(g int, i int) cid.CID { return cid.FromWords(0x44, 0, uint64(g), uint64(i)+1) }

// recorder collects the history.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func TestLinearizable(t *testing.T) {
	seed := *linSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-lin.seed replays the choices, not the timing)", seed)
	c := newCluster(t, 3, func(cfg *Config) {
		// Snapshots and compaction happen during the run, so restarted
		// nodes catch up from snapshots as well as from the log.
		cfg.SnapshotThreshold = 256
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.TrailingLogs = 128
	})
	rec := &recorder{start: time.Now()}
	var (
		stop      atomic.Bool
		progress  atomic.Int64 // acknowledged operations
		unknown   atomic.Int64
		refused   atomic.Int64
		ledgerMu  sync.Mutex
		ledgerAck = map[int][]int{} // client -> acknowledged ledger inserts
	)
	var wg sync.WaitGroup
	for g := 0; g < *linClients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			target := "n1"
			nextLedger := 0
			for !stop.Load() {
				n := c.find(target)
				if n == nil {
					target = fmt.Sprintf("n%d", 1+rng.IntN(3))
					continue
				}
				if rng.IntN(5) == 0 { // a ledger insert, not part of the checked history
					i := nextLedger
					err := n.Insert(ledgerKey(g), ledgerVal(g, i))
					if err == nil {
						nextLedger++
						ledgerMu.Lock()
						ledgerAck[g] = append(ledgerAck[g], i)
						ledgerMu.Unlock()
						continue
					}
					if errors.Is(err, ErrUnknownOutcome) {
						nextLedger++ // may be there or not: not counted
					}
					target = redirect(err, rng)
					pause()
					continue
				}
				in := linInput{op: uint8(rng.IntN(3)), k: uint8(rng.IntN(linKeys)), v: uint8(rng.IntN(linValues)), triple: rng.IntN(3) == 0}
				call := rec.now()
				out, err := linDo(n, in)
				ret := rec.now()
				switch {
				case err == nil:
					progress.Add(1)
				case in.op == linContains:
					refused.Add(1) // a read that failed observed nothing
					target = redirect(err, rng)
					pause()
					continue
				case errors.Is(err, ErrUnknownOutcome) && in.op != linContains:
					unknown.Add(1)
					out.unknown = true
					ret = math.MaxInt64 // may take effect at any time after the call
				case definite(err):
					refused.Add(1)
					target = redirect(err, rng)
					pause()
					continue // no effect: not part of the history
				default:
					t.Errorf("client %d: %v", g, err)
					return
				}
				rec.add(porcupine.Operation{ClientId: g, Input: in, Call: call, Output: out, Return: ret})
			}
		}()
	}

	// The killer: wait for progress, stop the leader, bring it back.
	for kill := 0; kill < *linKills && !t.Failed(); kill++ {
		before := progress.Load()
		waitFor(t, "clients to make progress", func() bool { return progress.Load() >= before+100 })
		l := c.waitLeader()
		c.stop(l.id)
		waitFor(t, "a new leader", func() bool { n := c.leader(); return n != nil && n != l })
		c.start(l)
		if testing.Verbose() {
			t.Logf("kill %d: %s stopped and restarted; %d operations so far", kill+1, l.id, progress.Load())
		}
	}
	stop.Store(true)
	wg.Wait()
	c.waitConverged()

	// Final reads of every checked pair complete the history, so a lost
	// write shows up even if no client read it afterwards.
	l := c.waitLeader()
	for k := uint8(0); k < linKeys; k++ {
		for v := uint8(0); v < linValues; v++ {
			for _, triple := range []bool{false, true} {
				in := linInput{op: linContains, k: k, v: v, triple: triple}
				call := rec.now()
				out, err := linDo(l.node, in)
				must(t, err)
				rec.add(porcupine.Operation{ClientId: *linClients, Input: in, Call: call, Output: out, Return: rec.now()})
			}
		}
	}
	// Every acknowledged ledger insert is on every node.
	acked := 0
	for g, is := range ledgerAck {
		for _, m := range c.running() {
			for _, i := range is {
				if !m.st.Contains(ledgerKey(g), ledgerVal(g, i)) {
					t.Errorf("acknowledged insert %d of client %d lost on %s", i, g, m.id)
				}
			}
		}
		acked += len(is)
	}
	t.Logf("%d kills, %d operations checked (%d with unknown outcome, %d refused and retried), %d acknowledged ledger inserts on every node",
		*linKills, len(rec.ops), unknown.Load(), refused.Load(), acked)

	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(linModel, rec.ops, *linCheck)
	t.Logf("porcupine: %s in %v", res, time.Since(start))
	if res != porcupine.Ok {
		path := t.TempDir() + "/history.html"
		if err := porcupine.VisualizePath(linModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatalf("history is %s", res)
	}
}

// find returns member id's running node, or nil.
func (c *cluster) find(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[id]; m != nil {
		return m.node
	}
	return nil
}

// linDo runs one checked operation against n.
func linDo(n *Node, in linInput) (linOutput, error) {
	k, v := linKey(in.k), linVal(in.v)
	t := []store.Triple{{S: k, P: linPred, O: v}}
	var err error
	switch {
	case in.op == linAdd && in.triple:
		_, err = n.InsertTriples(t)
	case in.op == linAdd:
		err = n.Insert(k, v)
	case in.op == linRemove && in.triple:
		_, err = n.DeleteTriples(t)
	case in.op == linRemove:
		err = n.Delete(k, v)
	}
	if in.op != linContains {
		return linOutput{}, err
	}
	st, err := n.Read(context.Background(), Linearizable)
	if err != nil {
		return linOutput{}, err
	}
	out := linOutput{present: st.Contains(k, v)}
	if in.triple {
		out.present = st.HasTriple(t[0])
	}
	if n.closed.Load() {
		// The test closes a node's store right after the node: the read
		// may have met a closed store, which answers false.
		return linOutput{}, ErrClosed
	}
	return out, nil
}

// definite reports whether err says the operation had no effect.
func definite(err error) bool {
	if errors.Is(err, ErrUnknownOutcome) {
		return false
	}
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrClosed)
}

// pause backs a refused client off for a moment, so that clients do not
// spin while there is no leader.
func pause() {
	t := time.NewTimer(time.Millisecond)
	<-t.C
}

// redirect picks the node to try next: the leader err names, else any.
func redirect(err error, rng *rand.Rand) string {
	var nl *NotLeaderError
	if errors.As(err, &nl) && nl.Leader.ID != "" {
		return nl.Leader.ID
	}
	return fmt.Sprintf("n%d", 1+rng.IntN(3))
}
