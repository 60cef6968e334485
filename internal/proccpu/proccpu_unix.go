//go:build unix

// Package proccpu reads the CPU time the process has used, for benchmarks that run every node
// and the load generator in one process and report what an entry costs the machine.
package proccpu

import (
	"syscall"
	"time"
)

// Used is the CPU time, user and system, the process has used so far.
func Used() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
