//go:build !unix

package node

import "time"

// processCPU is not measured here; the benchmarks then report no CPU figures.
func processCPU() time.Duration { return 0 }
