package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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
