package consensus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A member whose state was put back to an older copy while it was stopped (a backup restored,
// say) catches up from its local log when the log still holds what the state lacks. When the
// log was compacted past it, nothing local holds what is missing (a snapshot is the state
// itself): the member refuses to start, changes nothing, and is rebuilt from its peers. It never
// silently skips the entries between.
func TestStateRolledBackBelowTheSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name         string
		trailingLogs uint64
		wantRefused  bool
	}{
		{"replayed from the local log", 100000, false},
		{"refused when the log was compacted past it", 5, true},
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
			if !tc.wantRefused {
				c.start(f)
				c.waitConverged(70)
				sameRecords(t, c)
				if f.sm.restores.Load() != 0 {
					t.Fatal("restored a snapshot where the local log held what the state lacked")
				}
				return
			}
			f.sm = openList(t, f.dir+".db")
			oldApplied := f.sm.AppliedIndex()
			if _, err := New(context.Background(), c.config(f), f.sm); !errors.Is(err, ErrStateBehindLog) {
				t.Fatalf("started on a state behind its compacted log: %v, want ErrStateBehindLog", err)
			}
			if got := len(f.sm.records()); got != 10 || f.sm.AppliedIndex() != oldApplied {
				t.Fatalf("the refused start changed the state: %d records at applied index %d, want 10 at %d", got, f.sm.AppliedIndex(), oldApplied)
			}
			f.sm.db.Close()
			// The leader's log no longer reaches back either: the rebuild needs its state.
			if err := l.node.Raft().Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			// The repair: rebuild the member from its peers (what witness rebuild does).
			if err := os.RemoveAll(f.dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(f.dir + ".db"); err != nil {
				t.Fatal(err)
			}
			cfg := c.config(f)
			cfg.Join = true
			f.sm = openList(t, f.dir+".db")
			if f.node, err = New(context.Background(), cfg, f.sm); err != nil {
				t.Fatal(err)
			}
			c.waitConverged(70)
			sameRecords(t, c)
			if f.sm.restores.Load() == 0 {
				t.Fatal("the rebuilt member caught up without the leader's state")
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
	// Once restored, the snapshot f received is held by its state: no copy is kept.
	c.stop(f)
	snaps, err := newSnapshotStore(f.dir, 2, f.sm, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	metas, err := snaps.list()
	if err != nil || len(metas) == 0 {
		t.Fatalf("f's snapshots: %v, %v", metas, err)
	}
	got := metas[0]
	if !got.Held {
		t.Fatalf("the snapshot f restored is still a copy: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(snaps.dir, got.ID, snapshotStateFile)); !os.IsNotExist(err) {
		t.Fatalf("the restored snapshot's state.bin is still there: %v", err)
	}
	// Put back f's log and state from before the snapshot, and the snapshot as it was stored
	// before the restore (the leader's state, in state.bin): what a kill between storing the
	// snapshot and restoring it leaves.
	if err := os.RemoveAll(filepath.Join(f.dir, "wal")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(f.dir, "wal"), os.DirFS(filepath.Join(saved, "wal"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.dir+".db", state, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(snaps.dir, got.ID)); err != nil {
		t.Fatal(err)
	}
	sink, err := snaps.Create(1, got.Index, got.Term, got.Configuration, got.ConfigurationIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := l.sm.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(sink, rc); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
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
