package consensus

import (
	"os"
	"path/filepath"
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
			c := newCluster(t, 3, snapshotsOnRequest(tc.trailingLogs))
			l := c.leader()
			f := c.followerOf(l)
			proposeRecords(t, l.node, "a", 0, 10)
			c.waitConverged(10)
			// Keep a copy of f's state at 10 records.
			c.stop(f)
			old, err := os.ReadFile(f.dir + ".db")
			if err != nil {
				t.Fatal(err)
			}
			c.start(f)
			proposeRecords(t, l.node, "b", 0, 60)
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

// A follower killed after it stored a snapshot the leader sent but before its state machine
// restored it finds, at the next start, a local snapshot beyond the end of its log and a state
// older than both: it restores the snapshot. (It refused to start, "replay raft log entry ...
// below the snapshot: log not found", until the log's end was checked too.)
func TestKilledBeforeRestoringAnInstalledSnapshot(t *testing.T) {
	c := newCluster(t, 3, snapshotsOnRequest(5))
	l := c.leader()
	f := c.followerOf(l)
	proposeRecords(t, l.node, "a", 0, 10)
	c.waitConverged(10)
	// Keep f's state and log as they are at 10 records.
	c.stop(f)
	saved := t.TempDir()
	if err := os.CopyFS(filepath.Join(saved, "wal"), os.DirFS(filepath.Join(f.dir, "wal"))); err != nil {
		t.Fatal(err)
	}
	state, err := os.ReadFile(f.dir + ".db")
	if err != nil {
		t.Fatal(err)
	}
	proposeRecords(t, l.node, "b", 0, 60)
	if err := l.node.Raft().Snapshot().Error(); err != nil { // the leader's log no longer reaches f's
		t.Fatal(err)
	}
	c.start(f)
	c.waitConverged(70)
	if f.sm.restores.Load() == 0 {
		t.Fatal("f caught up without a snapshot")
	}
	// Put back f's log and state from before the snapshot, keeping the snapshot it stored: what
	// a kill between storing the snapshot and restoring it leaves.
	c.stop(f)
	if err := os.RemoveAll(filepath.Join(f.dir, "wal")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(f.dir, "wal"), os.DirFS(filepath.Join(saved, "wal"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.dir+".db", state, 0o600); err != nil {
		t.Fatal(err)
	}
	// A snapshot it was writing when killed: raft leaves such directories; start removes them.
	unfinished := filepath.Join(f.dir, "snapshots", "3-70-1796480000000.tmp")
	if err := os.MkdirAll(unfinished, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unfinished, "state.bin"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start(f)
	if _, err := os.Stat(unfinished); !os.IsNotExist(err) {
		t.Fatalf("unfinished snapshot left in place: %v", err)
	}
	c.waitConverged(70)
	sameRecords(t, c)
	if f.sm.restores.Load() == 0 {
		t.Fatal("f did not restore the snapshot it had stored")
	}
}

// snapshotsOnRequest configures members that snapshot only when a test asks, keep trailing
// entries of their log after a snapshot, and write the log in small segments.
func snapshotsOnRequest(trailing uint64) func(*Config) {
	return func(cfg *Config) {
		cfg.TrailingLogs = trailing
		cfg.SnapshotThreshold = 1 << 40
		cfg.SnapshotInterval = time.Hour
		cfg.WALSegmentBytes = 1024
	}
}
