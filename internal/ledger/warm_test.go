//go:build linux

package ledger

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident is the share of path's pages in the page cache.
func resident(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pages := (len(m) + os.Getpagesize() - 1) / os.Getpagesize()
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal("mincore:", errno)
	}
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return float64(in) / float64(pages)
}

// TestWarmUpReadsTheFileIntoTheCache checks that a state.db not in the page cache is in it after
// warmUp, and that a file larger than half the memory the process may use is left alone.
func TestWarmUpReadsTheFileIntoTheCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := make([]byte, 16<<20)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	drop := func() {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		if r := resident(t, path); r > 0.5 {
			t.Skipf("the kernel kept %.0f%% of the file in the cache after FADV_DONTNEED", 100*r)
		}
	}

	drop()
	old := debug.SetMemoryLimit(int64(len(b))) // half of it is less than the file
	warmUp(path)
	debug.SetMemoryLimit(old)
	if r := resident(t, path); r > 0.5 {
		t.Fatalf("a file larger than half the memory limit was read in: %.0f%% resident", 100*r)
	}

	warmUp(path)
	if r := resident(t, path); r < 0.9 {
		t.Fatalf("after warmUp %.0f%% of the file is in the page cache", 100*r)
	}
	absent := filepath.Join(t.TempDir(), "absent.db")
	warmUp(absent) // nothing to read: no error, no file made
	if _, err := os.Stat(absent); !os.IsNotExist(err) {
		t.Fatalf("warmUp of a missing file: %v", err)
	}
}
