package bench

import "flag"

// AddFlags registers on fs the workload flags that the cidstore bench
// command and bench/peers share, writing into w: -ops, -goroutines, -keys,
// -values, -dist, -zipf-s and -batch. Each flag's default is the one a
// zero Workload field gets (see Workload). Run time (-duration) is left to
// each command: the sweep spreads a time budget over its points, peers
// give every point the same time. Call the returned function after
// fs.Parse; it sets w.Dist from -dist.
func (w *Workload) AddFlags(fs *flag.FlagSet) (parsed func() error) {
	d, _ := Workload{}.normalize() // the defaults; a zero Workload is valid
	fs.Int64Var(&w.Ops, "ops", 0, "operations per point instead of a duration (0: use the duration)")
	fs.IntVar(&w.Goroutines, "goroutines", d.Goroutines, "concurrent workers")
	fs.Uint64Var(&w.KeySpace, "keys", d.KeySpace, "number of distinct keys (all preloaded)")
	fs.IntVar(&w.ValuesPerKey, "values", d.ValuesPerKey, "values per key in the preload")
	dist := fs.String("dist", d.Dist.String(), "key distribution: uniform or zipf")
	fs.Float64Var(&w.ZipfS, "zipf-s", d.ZipfS, "Zipf exponent (> 1) for -dist zipf")
	fs.IntVar(&w.BatchSize, "batch", d.BatchSize, "pairs per insert call (> 1 uses InsertBatch)")
	return func() (err error) {
		w.Dist, err = ParseDistribution(*dist)
		return err
	}
}
