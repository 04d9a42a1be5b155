// Package bench drives workloads against a CIDStore and reports what they
// achieved. The cidstore CLI's bench command is a thin front end to it.
//
// A workload is a fixed number of goroutines doing a mix of Get and Insert
// on random keys for a fixed time; Run reports operations per second.
// Comparisons with other stores live in the separate module bench/peers so
// that the library's go.mod stays lean.
package bench
