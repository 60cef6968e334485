package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// memLimit puts processes each into a memory cgroup of its own, limited to the same size, the
// way `docker run --memory` does: the kernel charges a cgroup its processes' anonymous memory
// and the page cache they fill, reclaims the cache when the charge reaches the limit, and kills a
// process whose own memory does not fit. cgroup v2 (memory.max) where the memory controller is
// there, v1 (memory.limit_in_bytes) otherwise; either needs root.
type memLimit struct {
	root  string // the memory hierarchy's directory
	v2    bool
	bytes int64
	dirs  []string
}

func newMemLimit(bytes int64) (*memLimit, error) {
	if ctl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(ctl), "memory") {
		return &memLimit{root: "/sys/fs/cgroup", v2: true, bytes: bytes}, nil
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		return &memLimit{root: "/sys/fs/cgroup/memory", bytes: bytes}, nil
	}
	return nil, errors.New("no cgroup memory controller mounted at /sys/fs/cgroup")
}

// add makes a new cgroup limited to l.bytes and returns the file a process writes its pid to
// to join it.
func (l *memLimit) add(name string) (string, error) {
	dir := filepath.Join(l.root, fmt.Sprintf("witnessnet-bench-%d-%d-%s", os.Getpid(), len(l.dirs), name))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	l.dirs = append(l.dirs, dir)
	file := "memory.limit_in_bytes"
	if l.v2 {
		file = "memory.max"
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(l.bytes, 10)), 0); err != nil {
		return "", err
	}
	return filepath.Join(dir, "cgroup.procs"), nil
}

// report gives the largest charge any of the cgroups reached and how many processes the kernel
// killed for want of memory in them.
func (l *memLimit) report() (peak int64, oomKills int) {
	peakFile, events, key := "memory.max_usage_in_bytes", "memory.oom_control", "oom_kill"
	if l.v2 {
		peakFile, events = "memory.peak", "memory.events"
	}
	for _, dir := range l.dirs {
		if b, err := os.ReadFile(filepath.Join(dir, peakFile)); err == nil {
			v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			peak = max(peak, v)
		}
		if b, err := os.ReadFile(filepath.Join(dir, events)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, key+" "); ok {
					k, _ := strconv.Atoi(strings.TrimSpace(v))
					oomKills += k
				}
			}
		}
	}
	return peak, oomKills
}

// remove deletes the cgroups once their processes have exited.
func (l *memLimit) remove() {
	for _, dir := range l.dirs {
		_ = os.Remove(dir)
	}
}
