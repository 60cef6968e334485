//go:build !unix

// Package proccpu reads the CPU time the process has used, for benchmarks that run every node
// and the load generator in one process and report what an entry costs the machine.
package proccpu

import "time"

// Used is not measured here: it is 0, and benchmarks then report no CPU figures.
func Used() time.Duration { return 0 }

// Split is not measured here: both are 0.
func Split() (user, system time.Duration) { return 0, 0 }
