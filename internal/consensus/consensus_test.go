package consensus

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestReplicatesInOneOrder(t *testing.T) {
	// 600 concurrent proposals on a loaded machine (or under the race detector) can starve the
	// leader's heartbeats past the test clusters' 100 ms timeouts; a leader change would fail
	// the test without saying anything about the order.
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	})
	l := c.leader()
	var wg sync.WaitGroup
	errs := make(chan error, 600)
	for i := range 600 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- propose(t, l.node, fmt.Sprintf("r%d", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged(600)
	sameRecords(t, c)
	// Concurrent proposals were grouped: raft's batch apply hands several commands to one
	// state-machine call.
	if calls := l.sm.applies.Load(); calls == 0 {
		t.Fatal("nothing applied")
	}
}

func TestFollowerRefusesAndNamesLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	for _, m := range c.members {
		if m == l {
			continue
		}
		if _, err := m.node.Propose(context.Background(), 1, nil); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("follower %s: %v", m.id, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if id, _ := m.node.Leader(); id == l.id {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("follower %s does not know the leader", m.id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// An isolated leader must not acknowledge anything proposed after it was cut off, while the
// majority elects a new leader and carries on.
func TestIsolatedLeaderAcknowledgesNothing(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	if err := propose(t, old.node, "before"); err != nil {
		t.Fatal(err)
	}
	c.isolate(old)
	var mu sync.Mutex
	acked := 0
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := propose(t, old.node, fmt.Sprintf("lost%d", i)); err == nil {
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}()
	}
	var rest []*member
	for _, m := range c.members {
		if m != old {
			rest = append(rest, m)
		}
	}
	nl := c.leader(rest...)
	if err := propose(t, nl.node, "after"); err != nil {
		t.Fatalf("majority cannot commit: %v", err)
	}
	wg.Wait()
	if acked != 0 {
		t.Fatalf("isolated leader acknowledged %d proposals", acked)
	}
	if old.node.IsLeader() {
		t.Fatal("isolated node still claims leadership")
	}
	c.connectAll()
	c.waitConverged(2)
	sameRecords(t, c)
}

func TestRestartDoesNotReapply(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	proposeRecords(t, l.node, "r", 0, 50)
	c.waitConverged(50)
	f := c.followerOf(l)
	c.stop(f)
	proposeRecords(t, l.node, "r", 50, 80)
	c.start(f)
	c.waitConverged(80)
	sameRecords(t, c)
	// The restarted member applied only the 30 commands it missed, never the 50 it held.
	if got := f.sm.applies.Load(); got != 30 {
		t.Fatalf("restarted member applied %d commands, want 30; restores %d", got, f.sm.restores.Load())
	}
}

func TestLaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 10
		cfg.SnapshotThreshold = 20
		cfg.SnapshotInterval = time.Hour
		cfg.WALSegmentBytes = 1024
	})
	l := c.leader()
	f := c.followerOf(l)
	c.isolate(f)
	proposeRecords(t, l.node, "r", 0, 100)
	if err := l.node.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	c.connectAll()
	c.waitConverged(100)
	sameRecords(t, c)
	if f.sm.restores.Load() == 0 {
		t.Fatal("the lagging follower caught up without a snapshot")
	}
	// The leader sent its state without copying it into a snapshot first, and the follower
	// keeps no copy of what it restored: no member holds a snapshot's state.bin (the follower
	// removes it a moment after its state machine has restored it).
	deadline := time.Now().Add(5 * time.Second)
	for _, m := range c.members {
		for {
			copies, _ := filepath.Glob(filepath.Join(m.dir, "snapshots", "*", snapshotStateFile))
			if len(copies) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s keeps copies of the state in its snapshots: %v", m.id, copies)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestShutdownTransfersLeadership(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	var rest []*member
	for _, m := range c.members {
		if m != l {
			rest = append(rest, m)
			// Followers now wait far longer than the test for an election of their own: a new
			// leader can only come from a transfer.
			rc := m.node.Raft().ReloadableConfig()
			rc.HeartbeatTimeout, rc.ElectionTimeout = time.Hour, time.Hour
			if err := m.node.Raft().ReloadConfig(rc); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.stop(l)
	nl := c.leader(rest...)
	if err := propose(t, nl.node, "x"); err != nil {
		t.Fatal(err)
	}
}

func TestProposeAllAppliesInOrder(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmds := [][][]byte{{[]byte("a"), []byte("b")}, {[]byte("c"), []byte("d"), []byte("e")}, {[]byte("f")}}
	before := l.node.Stats().LastIndex
	resps, err := l.node.ProposeAll(ctx, 1, cmds)
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 3 {
		t.Fatalf("%d responses for 3 commands", len(resps))
	}
	for i, r := range resps {
		if _, isErr := r.(error); isErr || r == nil {
			t.Fatalf("response %d: %v", i, r)
		}
	}
	if after := l.node.Stats().LastIndex; after-before != 3 {
		t.Fatalf("raft log grew by %d entries, want one per command", after-before)
	}
	c.waitConverged(6)
	sameRecords(t, c)
	if got := strings.Join(l.sm.records(), ""); got != "abcdef" {
		t.Fatalf("records %q, want abcdef", got)
	}
	if _, err := c.followerOf(l).node.ProposeAll(ctx, 1, cmds); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower's ProposeAll: %v, want ErrNotLeader", err)
	}
}

// LeaderChanged closes when the leader a member knows changes, on the members that see it, and
// a channel taken after the change waits for the next one.
func TestLeaderChangedCloses(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	f := c.followerOf(l)
	_, before := f.node.LeaderChanged()
	select {
	case <-before:
		t.Fatal("closed before any change")
	default:
	}
	var to *member
	for _, m := range c.members {
		if m != l && m != f {
			to = m
		}
	}
	if err := l.node.Raft().LeadershipTransferToServer(raft.ServerID(to.id), raft.ServerAddress(to.id)).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-before:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower's channel did not close when leadership moved")
	}
	if id, _ := f.node.Leader(); id != "" && id != to.id {
		t.Fatalf("after the change the follower knows %q as leader, want %q (or none yet)", id, to.id)
	}
	_, after := f.node.LeaderChanged()
	if after == before {
		t.Fatal("the channel was not replaced after closing")
	}
}

// An observation that reports the leader a member already knows closes nothing: one still queued
// when LeaderChanged read the leader (a member that has just learned of it), or a change and back.
// A call made to that leader stands.
func TestLeaderChangedIgnoresKnownLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	f := c.followerOf(l)
	var leader string
	var changed <-chan struct{}
	for deadline := time.Now().Add(10 * time.Second); leader == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the follower knows no leader")
		}
		leader, changed = f.node.LeaderChanged()
	}
	if leader != l.id {
		t.Fatalf("the follower knows %q as leader, want %q", leader, l.id)
	}
	for range 3 {
		f.node.leaders <- raft.Observation{Raft: f.node.Raft(), Data: raft.LeaderObservation{
			LeaderAddr: raft.ServerAddress(l.id), LeaderID: raft.ServerID(l.id)}}
	}
	for deadline := time.Now().Add(5 * time.Second); len(f.node.leaders) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the observations were not read")
		}
	}
	time.Sleep(50 * time.Millisecond) // the last one read is handled
	select {
	case <-changed:
		t.Fatal("an observation of the leader already known closed the channel")
	default:
	}
	if again, ch := f.node.LeaderChanged(); again != leader || ch != changed {
		t.Fatalf("LeaderChanged now %q and another channel, want %q and the same", again, leader)
	}
}

func TestTrailingFor(t *testing.T) {
	for _, tc := range []struct{ mean, want uint64 }{
		{0, minTrailingLogs},
		{32 << 10, minTrailingLogs},     // batched commands: a GiB is 32,768 of them
		{1300, TrailingLogBytes / 1300}, // one submission each: some 826,000
		{100, maxTrailingLogs},
	} {
		if got := trailingFor(tc.mean); got != tc.want {
			t.Errorf("trailingFor(%d) = %d, want %d", tc.mean, got, tc.want)
		}
	}
}

// Unless trailing_logs is set, a member sizes its trailing raft log in bytes: small commands
// make it keep more of them. One with trailing_logs set keeps that.
func TestTrailingLogSizedFromCommands(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotInterval = 50 * time.Millisecond
		if cfg.ID == "n3" {
			cfg.TrailingLogs = 100
		}
	})
	l := c.leader()
	cmds := make([][][]byte, 400)
	for i := range cmds {
		cmds[i] = [][]byte{fmt.Appendf(nil, "small %d", i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.node.ProposeAll(ctx, 1, cmds); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(400)
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range c.members {
		want := uint64(maxTrailingLogs)
		if m.id == "n3" {
			want = 100
		}
		for {
			got := m.node.Raft().ReloadableConfig().TrailingLogs
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s keeps a trailing log of %d commands, want %d", m.id, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
