package procs

import (
	"os"
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

func TestMemoryLimitOf(t *testing.T) {
	files := map[string]string{
		"/cg/app/memory.max":                      "314572800\n",
		"/cg/free/memory.max":                     "max\n",
		"/cg/memory/app/memory.limit_in_bytes":    "268435456\n",
		"/cg/memory/memory.limit_in_bytes":        "9223372036854771712\n",
		"/ns/memory.max":                          "104857600\n",
		"/bad/memory.max":                         "lots\n",
		"/cg/memory/other/memory.limit_in_bytes":  "0\n",
		"/cg/memory/nested/memory.limit_in_bytes": "9223372036854771712\n",
	}
	read := func(path string) ([]byte, error) {
		if s, ok := files[path]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	for _, c := range []struct {
		name, root, self string
		want             int64
	}{
		{"v2 limited", "/cg", "0::/app\n", 314572800},
		{"v2 unlimited", "/cg", "0::/free\n", 0},
		{"v1 limited", "/cg", "12:cpu,cpuacct:/app\n4:memory:/app\n0::/\n", 268435456},
		{"v1 unlimited", "/cg", "4:memory:/nested\n", 0},
		{"v1 zero is no limit", "/cg", "4:memory:/other\n", 0},
		{"namespaced: the mount's top is the cgroup", "/ns", "0::/\n", 104857600},
		{"path not under the mount", "/ns", "0::/elsewhere\n", 104857600},
		{"malformed", "/bad", "0::/\n", 0},
		{"no memory controller", "/cg", "3:cpuset:/\n", 0},
		{"empty", "/cg", "", 0},
	} {
		if got := memoryLimitOf(c.self, c.root, read); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestSetMemoryLimitLeavesGOMEMLIMIT(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	if got := SetMemoryLimit(); got != 0 {
		t.Errorf("with GOMEMLIMIT set, SetMemoryLimit set %d", got)
	}
}
