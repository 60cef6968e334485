// Package procs sets the runtime's limits a witness node runs with: how many goroutines run at
// once (GOMAXPROCS), and, in a cgroup with a memory limit, a soft memory limit for the heap.
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
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
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

// MemoryShare is the part of a cgroup memory limit the Go runtime is asked to keep its memory
// under (runtime/debug.SetMemoryLimit). The rest is for what the kernel also charges the cgroup
// and the runtime does not count: page cache being written back, socket buffers.
const MemoryShare = 0.8

// SetMemoryLimit gives the Go runtime a soft memory limit of 80% of the memory limit of the
// process's cgroup, when there is one and the GOMEMLIMIT environment variable does not set one.
// It returns the limit set, or 0.
//
// A node's heap is mostly short-lived (batches, index merges), and with the runtime's default
// pacing (GOGC=100) the heap may reach twice what is live before a collection: under a
// container's memory limit that headroom is what gets the process killed. With the soft limit
// the runtime collects more often as it nears the limit instead.
func SetMemoryLimit() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := cgroupMemoryLimit()
	if limit <= 0 {
		return 0
	}
	soft := int64(float64(limit) * MemoryShare)
	debug.SetMemoryLimit(soft)
	return soft
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup, v2 (memory.max) or v1
// (memory.limit_in_bytes), or returns 0 when there is none.
func cgroupMemoryLimit() int64 {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	return memoryLimitOf(string(b), "/sys/fs/cgroup", func(path string) ([]byte, error) { return os.ReadFile(path) })
}

// memoryLimitOf finds the memory limit for the cgroups listed in self (the text of
// /proc/self/cgroup) under the cgroup mount root. A cgroup namespace (a container) shows its own
// cgroup as "/", so the limit file is looked for under the path /proc/self/cgroup gives and then
// at the mount's top.
func memoryLimitOf(self, root string, read func(string) ([]byte, error)) int64 {
	parse := func(path string) int64 {
		b, err := read(path)
		if err != nil {
			return 0
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		v, err := strconv.ParseInt(s, 10, 64)
		// v1 writes "no limit" as the largest page-aligned int64.
		if err != nil || v <= 0 || v >= 1<<62 {
			return 0
		}
		return v
	}
	for _, line := range strings.Split(self, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = root, "memory.max"
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			dir, file = filepath.Join(root, "memory"), "memory.limit_in_bytes"
		default:
			continue
		}
		for _, d := range []string{filepath.Join(dir, parts[2]), dir} {
			if v := parse(filepath.Join(d, file)); v > 0 {
				return v
			}
		}
	}
	return 0
}
