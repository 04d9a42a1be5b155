package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Mix is a named operation mix. The standard mixes split their writes
// evenly between inserts and deletes so that value sets churn around
// ValuesPerKey instead of filling up and turning inserts into no-ops.
type Mix struct {
	Name               string
	ReadPct, DeletePct int
}

// Mixes are the standard mixes: read-heavy (90% reads, 10% writes),
// mixed (50/50) and write-heavy (10/90).
var Mixes = []Mix{
	{"read-heavy", 90, 5},
	{"mixed", 50, 25},
	{"write-heavy", 10, 45},
}

// ParseMixes parses a comma-separated list of mix names: the standard
// ones, or a custom mix named as CustomMix names it ("r0-d0": inserts
// only).
func ParseMixes(list string) ([]Mix, error) {
	var out []Mix
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if i := indexMix(Mixes, name); i >= 0 {
			out = append(out, Mixes[i])
			continue
		}
		var r, d int
		if n, err := fmt.Sscanf(name, "r%d-d%d", &r, &d); err != nil || n != 2 || d < 0 {
			return nil, fmt.Errorf("bench: unknown workload %q (want read-heavy, mixed, write-heavy or rR-dD)", name)
		}
		m, err := CustomMix(r, d)
		if err != nil {
			return nil, err
		}
		if m.Name != name {
			return nil, fmt.Errorf("bench: unknown workload %q (did you mean %s?)", name, m.Name)
		}
		out = append(out, m)
	}
	return out, nil
}

// CustomMix is a mix of readPct reads and deletePct deletes (a negative
// deletePct: half the writes), named like "r70-d15".
func CustomMix(readPct, deletePct int) (Mix, error) {
	if deletePct < 0 {
		deletePct = (100 - readPct) / 2
	}
	if readPct < 0 || readPct > 100 || deletePct > 100-readPct {
		return Mix{}, fmt.Errorf("bench: %d%% reads + %d%% deletes: want 0..100 in all", readPct, deletePct)
	}
	return Mix{fmt.Sprintf("r%d-d%d", readPct, deletePct), readPct, deletePct}, nil
}

func indexMix(ms []Mix, name string) int {
	for i, m := range ms {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// MixRank is the position of a mix name in ms, or -1: for sorting results.
func MixRank(ms []Mix, name string) int { return indexMix(ms, name) }

// Apply returns w running mix m.
func (m Mix) Apply(w Workload) Workload {
	w.Name, w.ReadPct, w.DeletePct = m.Name, m.ReadPct, m.DeletePct
	return w
}

// RunMixes opens one target, preloads it (when w.Preload) and runs every
// mix on it in turn, then closes it. Balanced inserts and deletes keep the
// data set near its preloaded size, so every mix starts from an
// equivalent state; the later results carry the first one's preload
// figures. each, if not nil, is called before and after every mix.
func RunMixes(ctx context.Context, open Opener, w Workload, mixes []Mix, each func(m Mix, done *Result)) ([]Result, error) {
	if open == nil {
		open = w.Target
	}
	if open == nil {
		return nil, errors.New("bench: RunMixes needs a target")
	}
	t, err := open()
	if err != nil {
		return nil, err
	}
	var results []Result
	for i, m := range mixes {
		if ctx.Err() != nil {
			break
		}
		mw := m.Apply(w)
		mw.Preload = w.Preload && i == 0
		if each != nil {
			each(m, nil)
		}
		res, err := RunTarget(ctx, t, mw)
		if err != nil {
			return results, errors.Join(err, t.Close())
		}
		if i > 0 && w.Preload {
			first := results[0]
			res.Workload.Preload = true
			res.PreloadPairs, res.PreloadTime = first.PreloadPairs, first.PreloadTime
			res.HeapPerPair, res.RSSPerPair = first.HeapPerPair, first.RSSPerPair
			res.TargetUsedPerPair, res.TargetRSSPerPair = first.TargetUsedPerPair, first.TargetRSSPerPair
		}
		results = append(results, res)
		if each != nil {
			each(m, &results[len(results)-1])
		}
	}
	return results, t.Close()
}
