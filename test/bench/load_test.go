package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestProfiled checks that -cpuprofile writes a profile (gzip-compressed protobuf) of the run it
// wraps, named after it, and that without the flag nothing is written.
func TestProfiled(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "prof")
	ran := 0
	load := func() *loadResult {
		ran++
		return &loadResult{entries: 1}
	}
	if r := profiled(options{}, "none", load); r.entries != 1 {
		t.Fatalf("result %+v", r)
	}
	if r := profiled(options{profileDir: dir}, "append-3-batched", load); r.entries != 1 {
		t.Fatalf("result %+v", r)
	}
	if ran != 2 {
		t.Fatalf("the load ran %d times, want 2", ran)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "append-3-batched.pprof" {
		t.Fatalf("profiles written: %v", entries)
	}
	b, err := os.ReadFile(filepath.Join(dir, "append-3-batched.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("the profile is not gzip-compressed: % x", b[:min(len(b), 8)])
	}
}

// TestProfiledSplitsByMember checks that the CPU a labelled goroutine spends during the run is
// counted for its member, and what unlabelled code spends for no member.
func TestProfiledSplitsByMember(t *testing.T) {
	spin := func(d time.Duration) {
		x := 0
		for end := time.Now().Add(d); time.Now().Before(end); x++ {
		}
		_ = x
	}
	// The profiler samples every 10 ms of CPU: on a loaded machine a short spin may go unsampled,
	// so the run is tried again a few times before the split counts as missing.
	var r *loadResult
	for range 5 {
		r = profiled(options{}, "split", func() *loadResult {
			var wg sync.WaitGroup
			wg.Go(func() {
				pprof.Do(context.Background(), pprof.Labels("member", "node7"), func(context.Context) { spin(300 * time.Millisecond) })
			})
			spin(300 * time.Millisecond)
			wg.Wait()
			return &loadResult{entries: 1000}
		})
		if r.profileErr != nil || (r.byMember["node7"] > 0 && r.unlabeled > 0) {
			break
		}
	}
	if r.profileErr != nil {
		t.Fatal(r.profileErr)
	}
	if len(r.byMember) != 1 || r.byMember["node7"] <= 0 {
		t.Fatalf("CPU by member %v, want node7's alone", r.byMember)
	}
	if r.unlabeled <= 0 {
		t.Fatalf("no CPU counted outside the members (%v)", r.unlabeled)
	}
	share := r.memberShare("node7")
	if !strings.Contains(share, "leader node7 ") || !strings.Contains(share, "no member") {
		t.Fatalf("share %q", share)
	}
}

// TestFellBehind checks that an open-loop row says when its answers came slower than offered.
func TestFellBehind(t *testing.T) {
	kept := &loadResult{entries: 10000, elapsed: 2050 * time.Millisecond}
	if s := fellBehind(5000, kept); s != "" {
		t.Fatalf("a run answered at %.0f of 5000/s: %q", kept.rate(), s)
	}
	behind := &loadResult{entries: 10000, elapsed: 4 * time.Second}
	if s := fellBehind(5000, behind); !strings.Contains(s, "fell behind") || !strings.Contains(s, "2500 entries/s") {
		t.Fatalf("a run answered at %.0f of 5000/s: %q", behind.rate(), s)
	}
}
