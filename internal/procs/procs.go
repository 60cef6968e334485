// Package procs chooses how many goroutines a witness node runs at once (GOMAXPROCS).
//
// A node spends much of its time waiting for the disk: the raft WAL and every bbolt commit end
// in fsync, which takes milliseconds on a busy virtual disk. A goroutine in a system call keeps
// its P (the runtime's right to run Go code) until the runtime's monitor takes the P back, and
// the monitor does so late or not at all: it leaves a P in a system call alone while another P
// is idle, and wakes up every 20 µs at best. On the 2-vCPU machine of BENCHMARKS.md, a
// 3-node network's execution trace showed Ps taken back a median of 150 µs (up to 8 ms) after
// the call began, 862 calls longer than 100 µs never taken back, and goroutines ready to run
// while fewer than two ran 42% of the time. One P more than the runtime's default lets the
// other goroutines keep the CPUs busy meanwhile: the same CPU per entry, about 10% more
// entries per second.
package procs

import (
	"os"
	"runtime"
)

// Default is the GOMAXPROCS a node runs with: the GOMAXPROCS environment variable when it is
// set, else one more than the runtime's current value (by default the CPUs the process may use).
func Default() int {
	n := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" {
		return n
	}
	return n + 1
}

// Set sets GOMAXPROCS to Default() and returns the previous value. Call it once, at start.
// (Setting it stops the runtime from following later changes to the CPU limit of the process's
// cgroup; a container whose limit changes is restarted with it.)
func Set() int {
	return runtime.GOMAXPROCS(Default())
}
