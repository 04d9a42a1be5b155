//go:build !unix

package store

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }

// usage is not measured here.
type usage struct {
	cpu            time.Duration
	minflt, maxRSS int64
}

func processUsage() usage { return usage{} }
