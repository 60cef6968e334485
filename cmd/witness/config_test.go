package main

import (
	"strings"
	"testing"
)

// A propose_workers outside 0..64 is refused before anything else is read.
func TestProposeWorkersBounds(t *testing.T) {
	for _, n := range []int{-1, maxProposeWorkers + 1} {
		fc := &fileConfig{ProposeWorkers: n}
		if _, err := fc.nodeConfig(nil); err == nil || !strings.Contains(err.Error(), "propose_workers") {
			t.Errorf("propose_workers %d: err = %v, want a propose_workers error", n, err)
		}
	}
	fc := &fileConfig{ProposeWorkers: 3, LogKey: "/nonexistent/log.key"}
	if _, err := fc.nodeConfig(nil); err == nil || strings.Contains(err.Error(), "propose_workers") {
		t.Errorf("propose_workers 3: err = %v, want the missing log key reported", err)
	}
}
