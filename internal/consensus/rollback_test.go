package consensus

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// A member whose state was put back to an older copy while it was stopped (a backup restored,
// say) catches up to everyone else: from its local log when the log still holds what the state
// lacks, from its newest local snapshot when the log was compacted past it. It never silently
// skips the entries between.
func TestStateRolledBackBelowTheSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name         string
		trailingLogs uint64
		wantRestore  bool
	}{
		{"replayed from the local log", 100000, false},
		{"restored from the local snapshot", 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, func(cfg *Config) {
				cfg.TrailingLogs = tc.trailingLogs
				cfg.SnapshotThreshold = 1 << 40 // snapshots only when the test asks
				cfg.SnapshotInterval = time.Hour
				cfg.WALSegmentBytes = 1024
			})
			l := c.leader()
			f := c.followerOf(l)
			for i := range 10 {
				if err := propose(t, l.node, fmt.Sprintf("a%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			c.waitConverged(10)
			// Keep a copy of f's state at 10 records.
			c.stop(f)
			old, err := os.ReadFile(f.dir + ".db")
			if err != nil {
				t.Fatal(err)
			}
			c.start(f)
			for i := range 60 {
				if err := propose(t, l.node, fmt.Sprintf("b%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			c.waitConverged(70)
			if err := f.node.Raft().Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			// Put the old state back while f is stopped.
			c.stop(f)
			if err := os.WriteFile(f.dir+".db", old, 0o600); err != nil {
				t.Fatal(err)
			}
			c.start(f)
			c.waitConverged(70)
			sameRecords(t, c)
			if got := f.sm.restores.Load() > 0; got != tc.wantRestore {
				t.Fatalf("restored from a snapshot: %v, want %v", got, tc.wantRestore)
			}
		})
	}
}
