package procs

import (
	"runtime"
	"testing"
)

func TestDefault(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)

	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(2)
	if got := Default(); got != 3 {
		t.Errorf("Default with 2 Ps = %d, want 3", got)
	}
	if old := Set(); old != 2 {
		t.Errorf("Set returned %d, want the previous 2", old)
	}
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("after Set GOMAXPROCS = %d, want 3", got)
	}

	// The operator's GOMAXPROCS stands.
	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(2)
	if got := Default(); got != 2 {
		t.Errorf("Default with GOMAXPROCS=2 in the environment = %d, want 2", got)
	}
	Set()
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("after Set with GOMAXPROCS=2 in the environment: %d", got)
	}
}
