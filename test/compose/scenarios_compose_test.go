//go:build compose

package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// result is one scenario's line in the final table.
type result struct {
	name, outcome string
	unavailable   time.Duration
	note          string
}

// scenario is one named fault with its pass criteria. run injects the fault, checks what must
// hold during it, heals it, and returns the window of the recorder's clock over which the
// unavailability is measured (fault injected to recovery observed) and a note for the report.
type scenario struct {
	name     string
	criteria string
	run      func(t *testing.T, c *cluster) (Window, string)
}

// TestCompose runs every scenario against one compose project, under one continuous workload,
// then checks the whole history.
func TestCompose(t *testing.T) {
	c := newCluster(t)
	var targets []Target
	for _, n := range c.nodes {
		targets = append(targets, Target{Name: n, URL: c.apis[n].URL})
	}
	w, err := NewWorkload(WorkloadConfig{Targets: targets, Clients: 6, Interval: 150 * time.Millisecond}, c.rec)
	if err != nil {
		t.Fatal(err)
	}
	c.watchCheckpoints()
	w.Start(context.Background())
	stopped := false
	defer func() {
		if !stopped {
			w.Stop()
			c.stopWatching()
		}
	}()

	var results []result
	var corrupted []Window
	for _, sc := range scenarios(&corrupted) {
		r := result{name: sc.name}
		var failed, skipped bool
		t.Run(sc.name, func(st *testing.T) {
			c.t = st // the docker helpers fail the scenario, not the whole run
			defer func() { c.t, failed, skipped = t, st.Failed(), st.Skipped() }()
			st.Logf("pass criteria: %s", sc.criteria)
			c.heal(st)
			win, note := sc.run(st, c)
			r.note = note
			if win.To > win.From {
				r.unavailable = Unavailability(c.rec.Ops(), win)
				st.Logf("%s: writes unavailable for %v (longest stretch without an acknowledged append, fault to recovery)",
					sc.name, r.unavailable.Round(time.Millisecond))
			}
			st.Logf("%s: %s", sc.name, note)
			c.heal(st)
		})
		switch {
		case skipped:
			r.outcome, r.note = "SKIP", skipNotes[sc.name]
		case failed:
			r.outcome = "FAIL"
		default:
			r.outcome = "PASS"
		}
		results = append(results, r)
		if failed && os.Getenv("WITNESS_COMPOSE_STOP_ON_FAILURE") != "" {
			break
		}
	}

	w.Stop()
	stopped = true
	c.heal(t)
	logs := c.converge(t, 2*time.Minute)
	cps, cpErrs := c.stopWatching()
	report(t, "every checkpoint served verifies under the policy's log keys", cpErrs)
	exempt := func(op Op) bool {
		for _, win := range corrupted {
			if op.Node == corruptNode && op.Call >= win.From && op.Call <= win.To {
				return true
			}
		}
		return false
	}
	c.verifyHistory(t, c.rec.Ops(), logs, cps, exempt)
	if c.auditor {
		c.checkAuditor(t)
	}
	printTable(t, results)
}

func printTable(t *testing.T, results []result) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-28s %-5s %-12s %s\n", "scenario", "", "unavailable", "note")
	for _, r := range results {
		u := "-"
		if r.unavailable > 0 {
			u = r.unavailable.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "%-28s %-5s %-12s %s\n", r.name, r.outcome, u, r.note)
	}
	t.Log(b.String())
	if path := os.Getenv("WITNESS_COMPOSE_REPORT"); path != "" {
		_ = os.WriteFile(path, []byte(b.String()), 0o644)
	}
}

// checkAuditor: the auditor container MUST still be running and MUST NOT have written evidence.
func (c *cluster) checkAuditor(t *testing.T) {
	state, _ := c.containerState("auditor")
	out := c.logs("auditor", time.Now().Add(-time.Hour))
	if state != "running" {
		t.Errorf("FAIL auditor is %s; its last output:\n%s", state, tail(out, 20))
		return
	}
	if strings.Contains(strings.ToLower(out), "evidence") || strings.Contains(strings.ToLower(out), "inconsistent") {
		t.Errorf("FAIL the auditor reported an inconsistency:\n%s", tail(out, 20))
		return
	}
	t.Logf("PASS auditor running without reporting an inconsistency")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// newAcks counts appends acknowledged with 201 (newly appended, not a resubmission) whose call
// and return both fall inside w, optionally only those answered by one node.
func newAcks(ops []Op, w Window, node string) []Op {
	var out []Op
	for _, op := range ops {
		if op.Kind == Append && op.Outcome == Ok && op.Status == 201 && op.Call >= w.From && op.Return <= w.To &&
			(node == "" || op.Node == node) {
			out = append(out, op)
		}
	}
	return out
}

func describe(ops []Op) string {
	var parts []string
	for _, op := range ops[:min(len(ops), 5)] {
		parts = append(parts, fmt.Sprintf("index %d by %s [%v, %v]", op.Index, op.Node, time.Duration(op.Call), time.Duration(op.Return)))
	}
	return strings.Join(parts, "; ")
}

// waitAcks waits until at least k appends are acknowledged after from.
func (c *cluster) waitAcks(t *testing.T, from int64, k int, timeout time.Duration) int64 {
	t.Helper()
	var at int64
	c.poll(t, timeout, fmt.Sprintf("%d acknowledged appends", k), func() bool {
		now := c.rec.Now()
		if AckedDuring(c.rec.Ops(), Window{from, now}) >= k {
			at = now
			return true
		}
		return false
	})
	return at
}

// hold keeps a fault in place for d while checking the cluster answers (a fault's duration, not
// a wait for a condition).
func hold(d time.Duration) { time.Sleep(d) }

const corruptNode = "node4"

// skipNotes says why a scenario skipped, for the table.
var skipNotes = map[string]string{}

func scenarios(corrupted *[]Window) []scenario {
	return []scenario{
		{"leader-sigkill-restart", "a new leader within 10s, writes resume, the killed node rejoins and catches up", leaderKill},
		{"two-followers-down", "no new append acknowledged without a quorum (2 of 4 up); writes resume once they are back", twoFollowersDown},
		{"minority-partition-leader", "the cut-off leader acknowledges nothing new; the majority elects a leader and serves; the old leader rejoins, restarts, catches up", minorityPartition},
		{"follower-isolated-healed", "pre-vote: the leader and its term are unchanged after the follower rejoins", followerIsolated},
		{"paused-leader", "paused past the election timeout: the others elect a leader and serve; the old leader steps down on unpause", pausedLeader},
		{"rolling-sigkill", "every node SIGKILLed and restarted in turn; writes resume after each; all catch up", rollingKill},
		{"graceful-leader-stop", "docker stop of the leader transfers leadership: writes resume without an election timeout (target: unavailable under 1s, reported)", gracefulStop},
		{"snapshot-catchup", "a follower down past the trailing raft log catches up by snapshot to the same log", snapshotCatchup},
		{"corrupt-stored-data", "a node whose state.db was damaged while stopped never serves wrong data; the cluster is unaffected", func(t *testing.T, c *cluster) (Window, string) {
			return corruptData(t, c, corrupted)
		}},
		{"wan-latency", "with 50ms±10ms netem delay on every node the network still elects and serves", wanLatency},
	}
}

func leaderKill(t *testing.T, c *cluster) (Window, string) {
	old, term := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	from := c.rec.Now()
	c.kill(old)
	leader, newTerm := c.waitLeader(t, c.others(old), []string{old}, 10*time.Second)
	elected := time.Duration(c.rec.Now() - from)
	c.waitAcks(t, c.rec.Now(), 5, 15*time.Second)
	c.start(old)
	c.waitCaughtUp(t, c.nodes, 60*time.Second)
	return Window{from, c.rec.Now()}, fmt.Sprintf("killed %s (term %d); %s elected in term %d after %v",
		old, term, leader, newTerm, elected.Round(time.Millisecond))
}

func twoFollowersDown(t *testing.T, c *cluster) (Window, string) {
	leader, _ := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	down := c.followers(leader, 2)
	from := c.rec.Now()
	for _, n := range down {
		c.kill(n)
	}
	allDown := c.rec.Now() // the quorum is gone only once both are down
	hold(5 * time.Second)
	restart := c.rec.Now()
	// A reply already on its way when the followers died may arrive just after: one second of grace.
	if acks := newAcks(c.rec.Ops(), Window{allDown + int64(time.Second), restart}, ""); len(acks) > 0 {
		t.Errorf("FAIL %d appends newly acknowledged while only 2 of 4 nodes were up (both down at %v): %s", len(acks), time.Duration(allDown), describe(acks))
	}
	for _, n := range down {
		c.start(n)
	}
	c.waitAcks(t, restart, 5, 30*time.Second)
	c.waitCaughtUp(t, c.nodes, 60*time.Second)
	return Window{from, c.rec.Now()}, fmt.Sprintf("killed %v for 5s; recovered %v after their restart", down,
		time.Duration(c.firstAckAfter(restart)-restart).Round(time.Millisecond))
}

func (c *cluster) firstAckAfter(from int64) int64 {
	first := int64(infinity)
	for _, op := range c.rec.Ops() {
		if op.Kind == Append && op.Outcome == Ok && op.Return >= from && op.Return < first {
			first = op.Return
		}
	}
	return first
}

func minorityPartition(t *testing.T, c *cluster) (Window, string) {
	old, term := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	from := c.rec.Now()
	c.disconnect(old)
	leader, newTerm := c.waitLeader(t, c.others(old), []string{old}, 10*time.Second)
	elected := time.Duration(c.rec.Now() - from)
	c.waitAcks(t, c.rec.Now(), 5, 15*time.Second)
	hold(3 * time.Second)
	healAt := c.rec.Now()
	c.connect(old)
	// The host reaches nodes over the same network: nothing could be sent to the cut-off leader,
	// but a reply it gave as the link went down may arrive just after; one second of grace.
	if acks := newAcks(c.rec.Ops(), Window{from + int64(time.Second), healAt}, old); len(acks) > 0 {
		t.Errorf("FAIL the cut-off leader %s acknowledged %d new appends: %s", old, len(acks), describe(acks))
	}
	c.poll(t, 15*time.Second, old+" to follow "+leader, func() bool {
		s, err := c.status(old)
		return err == nil && !strings.EqualFold(s.RaftState, "leader") && s.Term >= newTerm
	})
	c.stop(old) // the minority node restarts after the heal
	c.start(old)
	c.waitCaughtUp(t, c.nodes, 60*time.Second)
	return Window{from, c.rec.Now()}, fmt.Sprintf("cut off %s (term %d); %s elected in term %d after %v",
		old, term, leader, newTerm, elected.Round(time.Millisecond))
}

func followerIsolated(t *testing.T, c *cluster) (Window, string) {
	leader, term := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	f := c.followers(leader, 1)[0]
	from := c.rec.Now()
	c.disconnect(f)
	hold(5 * time.Second) // ten election timeouts
	c.connect(f)
	c.waitCaughtUp(t, c.nodes, 60*time.Second)
	after, afterTerm := c.waitLeader(t, c.nodes, nil, 10*time.Second)
	if after != leader || afterTerm != term {
		t.Errorf("FAIL leader %s term %d before, %s term %d after: the rejoining follower disrupted the leader", leader, term, after, afterTerm)
	}
	return Window{from, c.rec.Now()}, fmt.Sprintf("cut off %s for 5s; leader %s term %d before and %s term %d after", f, leader, term, after, afterTerm)
}

func pausedLeader(t *testing.T, c *cluster) (Window, string) {
	old, term := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	from := c.rec.Now()
	c.pause(old)
	leader, newTerm := c.waitLeader(t, c.others(old), []string{old}, 10*time.Second)
	elected := time.Duration(c.rec.Now() - from)
	c.waitAcks(t, c.rec.Now(), 5, 15*time.Second)
	hold(2 * time.Second)
	c.unpause(old)
	c.poll(t, 15*time.Second, old+" to step down", func() bool {
		s, err := c.status(old)
		return err == nil && !strings.EqualFold(s.RaftState, "leader")
	})
	c.waitCaughtUp(t, c.nodes, 60*time.Second)
	return Window{from, c.rec.Now()}, fmt.Sprintf("paused %s (term %d); %s elected in term %d after %v",
		old, term, leader, newTerm, elected.Round(time.Millisecond))
}

func rollingKill(t *testing.T, c *cluster) (Window, string) {
	from := c.rec.Now()
	var notes []string
	for _, n := range c.nodes {
		c.waitCaughtUp(t, c.nodes, 60*time.Second)
		wasLeader, _, _ := c.leaderAmong(c.nodes)
		at := c.rec.Now()
		c.kill(n)
		c.waitLeader(t, c.others(n), []string{n}, 10*time.Second)
		c.waitAcks(t, c.rec.Now(), 3, 15*time.Second)
		c.start(n)
		c.waitCaughtUp(t, c.nodes, 60*time.Second)
		gap := Unavailability(c.rec.Ops(), Window{at, c.rec.Now()})
		role := "follower"
		if wasLeader == n {
			role = "leader"
		}
		notes = append(notes, fmt.Sprintf("%s(%s) %v", n, role, gap.Round(time.Millisecond)))
	}
	return Window{from, c.rec.Now()}, strings.Join(notes, ", ")
}

func gracefulStop(t *testing.T, c *cluster) (Window, string) {
	old, _ := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	c.waitAcks(t, c.rec.Now(), 5, 15*time.Second)
	from := c.rec.Now()
	took := c.stop(old)
	leader, _ := c.waitLeader(t, c.others(old), []string{old}, 10*time.Second)
	c.waitAcks(t, c.rec.Now(), 10, 15*time.Second)
	win := Window{from, c.rec.Now()}
	gap := Unavailability(c.rec.Ops(), win)
	// The target is under a second. The window is measured, not asserted to the millisecond: on
	// a loaded 2-core machine client retries stretch it. Five seconds means leadership was not
	// handed over (an election after a timeout took its place), and that fails.
	if gap >= 5*time.Second {
		t.Errorf("FAIL writes unavailable for %v after a graceful stop of the leader: no handover", gap.Round(time.Millisecond))
	}
	target := "within the 1s target"
	if gap >= time.Second {
		target = "over the 1s target"
	}
	c.start(old)
	c.waitCaughtUp(t, c.nodes, 60*time.Second)
	return win, fmt.Sprintf("stopped %s (docker stop took %v); %s leads; %s", old, took.Round(time.Millisecond), leader, target)
}

func snapshotCatchup(t *testing.T, c *cluster) (Window, string) {
	leader, _ := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	f := c.followers(leader, 1)[0]
	before, err := c.status(f)
	if err != nil {
		t.Fatal(err)
	}
	from := c.rec.Now()
	c.kill(f)
	// Far more raft entries than trailing_logs + snapshot_threshold (64 + 128), and time for two
	// snapshot intervals, so the leader no longer has the entries the follower misses.
	c.poll(t, 2*time.Minute, "the leader to move 600 raft indexes on", func() bool {
		s, err := c.status(leader)
		return err == nil && s.AppliedIndex > before.AppliedIndex+600 && time.Duration(c.rec.Now()-from) > 6*time.Second
	})
	restart := time.Now()
	c.start(f)
	c.waitCaughtUp(t, c.nodes, 90*time.Second)
	// The node applies the snapshot a moment before raft logs that it did, and docker shows the
	// line a moment after that: give the log a few seconds.
	installed := pollUntil(5*time.Second, func() bool { return strings.Contains(c.logs(f, restart), "Installed remote snapshot") })
	if !installed {
		t.Errorf("FAIL %s caught up without installing a snapshot: its raft log did not say \"Installed remote snapshot\"", f)
	}
	return Window{from, c.rec.Now()}, fmt.Sprintf("%s down from raft index %d; snapshot installed: %v", f, before.AppliedIndex, installed)
}

// corruptData damages one stored envelope inside a stopped follower's state.db and checks the
// node never serves the damaged bytes. The node is then repaired as an operator would.
//
// The damage is exercised only if the node reads the damaged copy: a follower stopped for the
// copies may come back behind the leader's compacted log (the suite's trailing log is short) and
// be sent a snapshot, which replaces the damaged file with the leader's intact one before it
// serves. An attempt where the node never refused the damaged entry is repeated, saying why,
// up to corruptAttempts times, and the scenario fails if none exercised the damage.
func corruptData(t *testing.T, c *cluster, corrupted *[]Window) (Window, string) {
	leader, _ := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	n := corruptNode
	if n == leader {
		c.stop(n) // leadership moves away; the victim is a follower
		c.start(n)
		c.waitCaughtUp(t, c.nodes, 60*time.Second)
	}
	s, err := c.status(n)
	if err != nil || s.TreeSize < 10 {
		t.Fatalf("%s: status %+v, %v", n, s, err)
	}
	index := s.TreeSize / 2
	leaf, code, err := c.apis[n].EntryLeaf(context.Background(), index)
	if err != nil || code != 200 {
		t.Fatalf("%s entry %d: %d %v", n, index, code, err)
	}
	from := c.rec.Now()
	*corrupted = append(*corrupted, Window{from, infinity})
	var tries []string
	var hits int
	var outcome string
	exercised := false
	for attempt := 1; attempt <= corruptAttempts && !exercised && !t.Failed(); attempt++ {
		hits, outcome, exercised = c.damageOnce(t, n, index, leaf)
		tries = append(tries, fmt.Sprintf("attempt %d: flipped %d byte(s), %s", attempt, hits, outcome))
	}
	if !exercised && !t.Failed() {
		t.Errorf("FAIL the damage to %s's entry %d was never exercised: %s", n, index, strings.Join(tries, "; "))
	}
	state, _ := c.containerState(n)
	// The cluster MUST NOT have noticed: writes kept being acknowledged.
	c.waitAcks(t, c.rec.Now(), 5, 15*time.Second)
	win := Window{from, c.rec.Now()}

	// Repair as an operator would: set the damaged replicated state aside with witness rebuild
	// (run from the node's own image on its volume) and let the peers catch the node up. Putting
	// the old state.db back is not a repair: raft's log moved on and was compacted meanwhile.
	id := c.container(n)
	c.stop(n)
	c.must(c.docker("run", "--rm", "--network", "none", "--volumes-from", id, "--entrypoint", "/witness",
		envOr("WITNESS_IMAGE", "witnessnet:compose-test"), "rebuild", "--data-dir", "/data"))
	c.start(n)
	c.waitCaughtUp(t, c.nodes, 60*time.Second)
	(*corrupted)[len(*corrupted)-1].To = c.rec.Now()
	return win, fmt.Sprintf("entry %d in %s's state.db, container %s; %s", index, n, state, strings.Join(tries, "; "))
}

// corruptAttempts is how many times corruptData damages the entry before it gives up on
// having the node read the damage.
const corruptAttempts = 4

// damageOnce stops node, flips bytes of the entry's envelope in its state.db, starts it, and
// probes it for a while: everything it serves MUST be right (the entry, its bundle; the
// checkpoint watcher holds its checkpoints to the converged log). It reports how many bytes it
// flipped, what the node did, and whether the damage was exercised: whether the node refused the
// damaged entry (an answer other than 200) at least once.
func (c *cluster) damageOnce(t *testing.T, n string, index uint64, leaf []byte) (hits int, outcome string, exercised bool) {
	ctx := context.Background()
	c.stop(n)
	dir := t.TempDir()
	orig, damaged := filepath.Join(dir, "state.db"), filepath.Join(dir, "damaged.db")
	id := c.container(n)
	c.must(c.docker("cp", id+":/data/state.db", orig))
	hits, err := damage(orig, damaged, leaf)
	if err != nil {
		t.Fatal(err)
	}
	c.must(c.docker("cp", damaged, id+":/data/state.db"))
	restart := time.Now()
	c.start(n)

	var refused []int
	served := false
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		got, code, err := c.apis[n].EntryLeaf(ctx, index)
		switch {
		case err == nil && code == 200:
			if string(got) != string(leaf) {
				t.Errorf("FAIL %s served damaged data for entry %d", n, index)
				return hits, "served damaged data", true
			}
			served = true
		case err == nil:
			if len(refused) == 0 || refused[len(refused)-1] != code {
				refused = append(refused, code)
			}
		}
		if bad := c.checkBundle(n, index, leaf); bad != "" {
			t.Errorf("FAIL %s %s", n, bad)
			return hits, bad, true
		}
		time.Sleep(500 * time.Millisecond) // probe interval while the damaged node runs
	}
	snapshot := strings.Contains(c.logs(n, restart), "Installed remote snapshot")
	switch {
	case len(refused) > 0:
		outcome = fmt.Sprintf("answered %v for the damaged entry", refused)
		if served {
			outcome += ", then the intact entry"
		}
		exercised = true
	case served && snapshot:
		outcome = "installed a snapshot from the leader before it served, and served the intact entry: the damage was not read"
	case served:
		outcome = "served the intact entry without installing a snapshot: the bytes flipped were not the copy it reads"
	default:
		// A node that finds its state damaged at start may refuse to run: that is the damage
		// read too.
		if st, _ := c.containerState(n); st != "running" {
			outcome, exercised = "never answered: container "+st, true
		} else {
			outcome = "never answered for the damaged entry"
		}
	}
	if snapshot && exercised {
		outcome += " (a snapshot from the leader was installed meanwhile)"
	}
	return hits, outcome, exercised
}

// damage copies src to dst with the envelope inside leaf altered wherever it occurs.
func damage(src, dst string, leaf []byte) (int, error) {
	db, err := os.ReadFile(src)
	if err != nil {
		return 0, err
	}
	// The envelope's signature (the tail of its base64 in a leaf of that form) is unique to this
	// entry; the rest is much the same for every envelope of the workload.
	needle := leaf
	for _, start := range []string{`"sig":"`, `"envelope":"`} {
		i := strings.LastIndex(string(leaf), start)
		if i < 0 {
			continue
		}
		env := leaf[i+len(start):]
		if j := strings.IndexByte(string(env), '"'); j > 0 {
			env = env[:j]
		}
		needle = env[max(0, len(env)-64):]
		break
	}
	hits := 0
	for off := 0; ; {
		i := strings.Index(string(db[off:]), string(needle))
		if i < 0 {
			break
		}
		p := off + i + len(needle)/2
		if db[p] == 'A' {
			db[p] = 'B'
		} else {
			db[p] = 'A'
		}
		hits++
		off = p + 1
	}
	if hits == 0 {
		return 0, fmt.Errorf("the entry's bytes are not in %s", src)
	}
	return hits, os.WriteFile(dst, db, 0o600)
}

// checkBundle fetches the entry bundle holding index from node and reports it if it serves a
// different leaf there.
func (c *cluster) checkBundle(node string, index uint64, leaf []byte) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t := index / 256
	b, code, err := c.apis[node].get(ctx, "/tile/entries/"+TilePath(t))
	if err != nil || code != 200 {
		return ""
	}
	es, err := ParseBundle(b)
	if err != nil || uint64(len(es)) <= index%256 {
		return ""
	}
	if string(es[index%256]) != string(leaf) {
		return fmt.Sprintf("served damaged data for entry %d in entry bundle %d", index, t)
	}
	return ""
}

func wanLatency(t *testing.T, c *cluster) (Window, string) {
	var pids []string
	for _, n := range c.nodes {
		pid := strings.TrimSpace(c.must(c.docker("inspect", "-f", "{{.State.Pid}}", c.container(n))))
		pids = append(pids, pid)
	}
	ctx := context.Background()
	if out, err := run(ctx, nil, "nsenter", "-t", pids[0], "-n", "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "50ms", "10ms"); err != nil {
		skipNotes["wan-latency"] = "the image has no tc (FROM scratch); tc from the host in the container's netns failed: " + firstLine(out, err)
		t.Skipf("skipped: %s", skipNotes["wan-latency"])
	}
	defer func() {
		for _, pid := range pids {
			_, _ = run(ctx, nil, "nsenter", "-t", pid, "-n", "tc", "qdisc", "del", "dev", "eth0", "root")
		}
	}()
	for _, pid := range pids[1:] {
		if _, err := run(ctx, nil, "nsenter", "-t", pid, "-n", "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "50ms", "10ms"); err != nil {
			t.Fatal(err)
		}
	}
	from := c.rec.Now()
	hold(10 * time.Second)
	c.waitAcks(t, from, 20, 30*time.Second)
	leader, _ := c.waitLeader(t, c.nodes, nil, 30*time.Second)
	return Window{from, c.rec.Now()}, "50ms±10ms on every node's eth0 for 10s; leader " + leader
}
