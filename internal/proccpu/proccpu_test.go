//go:build unix

package proccpu

import (
	"os"
	"testing"
	"time"
)

// The CPU time grows as the process works, in user space for computation and in the kernel for
// system calls, and Used is the sum of Split's parts.
func TestSplit(t *testing.T) {
	user0, sys0 := Split()
	x := uint64(1)
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
		x = x*6364136223846793005 + 1442695040888963407
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
		f.Read(b[:])
		f.Stat()
	}
	user1, sys1 := Split()
	if user1 <= user0 || sys1 <= sys0 {
		t.Fatalf("user %v -> %v, kernel %v -> %v: both should grow (x=%d)", user0, user1, sys0, sys1, x)
	}
	if used, sum := Used(), user1+sys1; used < sum || used > sum+50*time.Millisecond {
		t.Fatalf("Used() = %v, Split() sums to %v just before", used, sum)
	}
}
