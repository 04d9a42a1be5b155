package store

import (
	"flag"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cidstore/cidstore/cid"
)

var (
	modelSeed  = flag.Uint64("model.seed", 0, "replay one model-test seed (0: run the default seeds)")
	modelSteps = flag.Int("model.steps", 1500, "steps per model-test seed")
)

// TestModel applies seeded random sequences of every write operation and
// compares the store with the model after every step, including ordered
// iteration. A failure prints the seed; -model.seed replays it.
func TestModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8}
	if *modelSeed != 0 {
		seeds = []uint64{*modelSeed}
	}
	for _, seed := range seeds {
		seed := seed
		ok := t.Run("", func(t *testing.T) { runModel(t, seed, *modelSteps) })
		if !ok {
			t.Logf("replay with: go test ./store -run TestModel -model.seed %d", seed)
		}
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed))
	// Few keys and values so sets grow, shrink and change representation.
	shards := []int{1, 2, 8}[seed%3]
	s := openMem(t, Options{Shards: shards, Config: withConfig(func(c *Config) { c.InlineValues = 1 + int(seed%5) })})
	m := model{}
	key := func() cid.CID { return w(1 + rng.Uint64N(40)) }
	val := func() cid.CID { return w(1 + rng.Uint64N(12)) }
	for step := 0; step < steps; step++ {
		var k cid.CID
		switch op := rng.IntN(10); {
		case op < 5:
			k = key()
			v := val()
			must(t, s.Insert(k, v))
			m.add(k, v)
		case op < 7:
			k = key()
			v := val()
			must(t, s.Delete(k, v))
			if delete(m[k], v); len(m[k]) == 0 {
				delete(m, k)
			}
		case op < 8:
			k = key()
			must(t, s.DeleteKey(k))
			delete(m, k)
		default:
			pairs := make([]Pair, rng.IntN(8))
			for i := range pairs {
				pairs[i] = Pair{key(), val()}
				m.add(pairs[i].Key, pairs[i].Value)
			}
			must(t, s.InsertBatch(pairs))
			if len(pairs) > 0 {
				k = pairs[0].Key
			}
		}
		if got, want := s.Get(k), m.values(k); !slices.Equal(got, want) {
			t.Fatalf("seed %d step %d: Get(%v) = %v, want %v", seed, step, k.EString(), got, want)
		}
		if step%10 == 0 || step == steps-1 {
			checkAll(t, s, m, seed, step)
		}
	}
}
