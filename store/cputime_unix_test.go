//go:build unix

package store

import (
	"runtime"
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process used so
// far: on a shared machine, CPU per operation is steadier than wall time.
func processCPU() time.Duration { return processUsage().cpu }

// usage is what the process has used so far.
type usage struct {
	cpu    time.Duration // user and system CPU time
	minflt int64         // minor page faults: pages first touched, mostly
	maxRSS int64         // peak resident set, bytes
}

func processUsage() usage {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return usage{}
	}
	rss := int64(ru.Maxrss) // KiB on Linux, bytes on Darwin
	if runtime.GOOS != "darwin" {
		rss <<= 10
	}
	return usage{time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), int64(ru.Minflt), rss}
}
