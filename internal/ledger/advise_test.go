//go:build linux

package ledger

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// vmFlags returns the VmFlags of the mapping of path in /proc/self/smaps.
func vmFlags(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && strings.Contains(f[0], "-") {
			in = f[len(f)-1] == path
			continue
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok && in {
			return strings.Fields(v)
		}
	}
	t.Fatalf("no mapping of %s in /proc/self/smaps", path)
	return nil
}

// TestReadInOrderAdvisesTheMap checks that a pass over the whole state reads it through a map
// advised as sequential, and that bbolt's random-access advice is put back after it.
func TestReadInOrderAdvisesTheMap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := openStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.db.Close()
	if f := vmFlags(t, path); !slices.Contains(f, "rr") {
		t.Fatalf("bbolt's map is not advised random (VmFlags %v)", f)
	}
	restore := readInOrder(st.db)
	if f := vmFlags(t, path); !slices.Contains(f, "sr") || slices.Contains(f, "rr") {
		t.Fatalf("during the pass, VmFlags %v: want sr (sequential), not rr (random)", f)
	}
	restore()
	if f := vmFlags(t, path); !slices.Contains(f, "rr") || slices.Contains(f, "sr") {
		t.Fatalf("after the pass, VmFlags %v: want rr (random) again", f)
	}
}
