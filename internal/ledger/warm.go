package ledger

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// warmUp reads the file at path from one end to the other, when it fits comfortably in the
// memory this process may use, so that it is in the page cache before bbolt opens it. bbolt
// rebuilds its freelist at open by visiting every page of the tree (the store does not sync a
// freelist), through a map it advises as random access: a state.db that is not in the page
// cache, after a reboot say, is then read 4 KiB per page fault, some 80 MB/s on the reference
// machine: 13-17 s to open a 1.3 GiB state.db, 2.5 s with the file read in order first
// (BENCHMARKS.md, ninth session). A file already cached is read from memory (0.1-0.3 s per GiB).
// A file larger than half of the memory available (MemAvailable, and Go's memory limit where
// one is set, which a node under a cgroup sets below the cgroup's) is left alone: it would not
// stay in the cache. Errors leave the file as it is: this only saves time.
func warmUp(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 || fi.Size() > availableMemory()/2 {
		return
	}
	buf := make([]byte, 4<<20)
	for {
		if _, err := io.ReadFull(f, buf); err != nil {
			return
		}
	}
}

// availableMemory is the smaller of MemAvailable in /proc/meminfo and Go's memory limit; 0 when
// neither can be read.
func availableMemory() int64 {
	avail := debug.SetMemoryLimit(-1) // math.MaxInt64 when no limit is set
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("MemAvailable:")); ok {
				if kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(v, []byte("kB")))), 10, 64); err == nil {
					avail = min(avail, kb<<10)
				}
				break
			}
		}
	}
	if avail == math.MaxInt64 {
		return 0
	}
	return avail
}
