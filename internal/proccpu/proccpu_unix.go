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
	user, system := Split()
	return user + system
}

// Split is the CPU time the process has used so far in user space and in the kernel on its
// behalf (system calls, page faults): the kernel's share is where writes into the page cache,
// syncs and loopback traffic show.
func Split() (user, system time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
