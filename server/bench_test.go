package server

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cidstore/cidstore/cid"
	"github.com/cidstore/cidstore/store"
	"github.com/go-zeromq/zmq4"
	"github.com/vmihailenco/msgpack/v5"
)

// The server benchmarks. Commands, and what BENCHMARKS.md reports:
//
//	go test ./server -run '^$' -bench DecodeBatch -benchmem
//	go test ./server -run '^$' -bench 'ServeInsert' -benchtime 10x -timeout 30m
//	go test ./server -run '^$' -bench 'ServeLookup' -benchtime 3s

// cidsemCID is a random CID in the form the Python clients send: the
// legacy 128-bit "E(high,low)".
func cidsemCID(rng *rand.Rand) (cid.CID, string) {
	h, l := rng.Uint64(), rng.Uint64()|1
	return cid.FromWords(0, 0, h, l), fmt.Sprintf("E(%d,%d)", h, l)
}

// insertBatch is one batch of 1000 new items: typed for the in-process
// baseline, msgpack-encoded as the Python clients send it for the
// loopback clients.
type insertBatch struct {
	triples []Triple
	pairs   []store.PairOp
	msg     []byte
}

// makeBatches builds n batches of size items: triples
// {"s","p","o"} or pairs {"key","value"}, random CIDs.
func makeBatches(tb testing.TB, rng *rand.Rand, n, size int, triples bool) []insertBatch {
	out := make([]insertBatch, n)
	for i := range out {
		items := make([]any, size)
		for j := range items {
			s, ss := cidsemCID(rng)
			p, ps := cidsemCID(rng)
			if !triples {
				out[i].pairs = append(out[i].pairs, store.PairOp{Kind: store.OpInsert, Key: s, Value: p})
				items[j] = m{"key": ss, "value": ps}
				continue
			}
			o, os := cidsemCID(rng)
			out[i].triples = append(out[i].triples, Triple{S: s, P: p, O: o})
			items[j] = m{"s": ss, "p": ps, "o": os}
		}
		req := m{"command": "batch_insert", "entries": items}
		if triples {
			req = m{"command": "batch_insert", "triples": items}
		}
		b, err := msgpack.Marshal(req)
		if err != nil {
			tb.Fatal(err)
		}
		out[i].msg = b
	}
	return out
}

// BenchmarkDecodeBatch decodes a batch_insert of 1000 triples as the
// Python clients send it (maps of three "E(h,l)" strings, 88 KB).
func BenchmarkDecodeBatch(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, triples := range []bool{true, false} {
		name := map[bool]string{true: "triples", false: "pairs"}[triples]
		b.Run(name, func(b *testing.B) {
			batch := makeBatches(b, rng, 1, 1000, triples)[0]
			dec := newMsgDecoder(Limits{})
			var c Command
			b.SetBytes(int64(len(batch.msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := dec.decode(batch.msg, &c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// BenchmarkServeInsert is the acceptance benchmark of `cidstore serve`:
// batches of 1000 new items (random 128-bit CIDs, as the Python clients
// send them) from 1 and 4 clients, over loopback with zmq4 REQ clients to
// a server in this process, against the same store driven in process by
// as many goroutines calling the Backend directly with batches alike, in
// the same run. The two sides alternate every 20 batches, so that both
// meet a store of the same size and the same load from the rest of the
// machine. Each b.N iteration is 100 batches per side: -benchtime 10x
// inserts 1M items each way. Reported: items/s of each side, the ratio
// loopback/in-process, and the loopback requests' p99 latency; ns/op is
// per item over loopback.
//
// Items are pairs through Backend.ApplyBatch, or triples through
// Backend.InsertTriples; "always" is a persistent store under SyncAlways.
func BenchmarkServeInsert(b *testing.B) {
	for _, kind := range []string{"pairs", "triples"} {
		for _, mode := range []string{"memory", "always"} {
			for _, clients := range []int{1, 4} {
				b.Run(fmt.Sprintf("%s/%s/clients=%d", kind, mode, clients), func(b *testing.B) {
					benchServeInsert(b, kind == "triples", mode == "always", clients)
				})
			}
		}
	}
}

func benchServeInsert(b *testing.B, triples, durable bool, clients int) {
	const stepBatches, steps, size = 20, 5, 1000
	dir := ""
	if durable {
		dir = b.TempDir()
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var be Backend = st
	ts := startServerWith(b, Config{ZMQ: "tcp://127.0.0.1:0"}, st, be)
	rng := rand.New(rand.NewPCG(uint64(clients), 7))
	conns := make([]*client, clients)
	for i := range conns {
		conns[i] = dial(b, zmq4.Req, ts.Addr("zmq"))
	}
	// Every batch is made before the clock starts, so that making them
	// (and collecting their garbage) is not measured.
	rounds := b.N * steps
	local := make([][]insertBatch, rounds)
	remote := make([][]insertBatch, rounds)
	for r := range rounds {
		local[r] = makeBatches(b, rng, stepBatches, size, triples)
		remote[r] = makeBatches(b, rng, stepBatches, size, triples)
	}
	runtime.GC()
	var inproc, loop time.Duration
	var lat []time.Duration
	var latMu sync.Mutex
	b.ResetTimer()
	for r := range rounds {
		// In process: clients goroutines calling the Backend.
		t0 := time.Now()
		runSplit(clients, local[r], func(_ int, bt insertBatch) error {
			if triples {
				_, err := be.InsertTriples(bt.triples)
				return err
			}
			_, err := be.ApplyPairs(bt.pairs, nil)
			return err
		}, b)
		inproc += time.Since(t0)
		// Over loopback: the same number of REQ clients.
		t0 = time.Now()
		runSplit(clients, remote[r], func(g int, bt insertBatch) error {
			start := time.Now()
			r := conns[g].call(bt.msg)
			d := time.Since(start)
			if r["status"] != "ok" {
				return fmt.Errorf("reply %v", r)
			}
			latMu.Lock()
			lat = append(lat, d)
			latMu.Unlock()
			return nil
		}, b)
		loop += time.Since(t0)
	}
	b.StopTimer()
	items := float64(rounds * stepBatches * size)
	inRate, loopRate := items/inproc.Seconds(), items/loop.Seconds()
	slices.Sort(lat)
	b.ReportMetric(loop.Seconds()*1e9/items, "ns/op")
	b.ReportMetric(inRate, "inproc-items/s")
	b.ReportMetric(loopRate, "loopback-items/s")
	b.ReportMetric(loopRate/inRate, "ratio")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// runSplit hands batches out to n goroutines, goroutine g taking every
// n-th.
func runSplit(n int, batches []insertBatch, fn func(g int, bt insertBatch) error, b *testing.B) {
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(batches); i += n {
				if err := fn(g, batches[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkServeLookup measures lookup round trips over loopback from 1
// and 16 zmq4 REQ clients, each key with 4 values, against AppendValues
// in process from as many goroutines in the same run.
func BenchmarkServeLookup(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			st := openMemStore(b)
			var be Backend = st
			ts := startServerWith(b, Config{ZMQ: "tcp://127.0.0.1:0"}, nil, be)
			const keys = 100_000
			ops := make([]store.PairOp, 0, 4*keys)
			reqs := make([][]byte, keys)
			for k := range keys {
				key := cid.FromWords(0, 0, uint64(k+1), 1)
				for v := range 4 {
					ops = append(ops, store.PairOp{Kind: store.OpInsert, Key: key, Value: cid.FromWords(0, 0, 0, uint64(v+1))})
				}
				reqs[k] = pack(b, m{"command": "lookup", "key": key.EString()})
			}
			if err := st.ApplyBatch(ops); err != nil {
				b.Fatal(err)
			}
			conns := make([]*client, clients)
			for i := range conns {
				conns[i] = dial(b, zmq4.Req, ts.Addr("zmq"))
			}
			// In process, for the ratio.
			t0 := time.Now()
			var wg sync.WaitGroup
			for g := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var buf []cid.CID
					for i := g; i < b.N; i += clients {
						buf = be.AppendValues(buf[:0], cid.FromWords(0, 0, uint64(i%keys+1), 1))
					}
				}()
			}
			wg.Wait()
			inproc := time.Since(t0)
			b.ResetTimer()
			for g := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < b.N; i += clients {
						if r := conns[g].call(reqs[i%keys]); toInt(r["count"]) != 4 {
							b.Errorf("lookup: %v", r)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
			b.ReportMetric(float64(b.N)/inproc.Seconds(), "inproc-lookups/s")
		})
	}
}
