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

	"github.com/anishathalye/porcupine"
)

// Settings of the suite's network: small raft trailing logs and snapshot thresholds, so that a
// follower kept down for a few seconds has to catch up by snapshot.
const extraConfig = `trailing_logs: 64
snapshot_threshold: 128
snapshot_interval: 1s
wal_segment_bytes: 65536
`

// newCluster builds the image and a fresh network and starts the project. It skips the test,
// saying why, when there is no Docker engine.
func newCluster(t *testing.T) *cluster {
	if out, err := run(context.Background(), nil, "docker", "info"); err != nil {
		t.Skipf("skipping the compose suite: `docker info` failed, no Docker engine answers: %v", firstLine(out, err))
	}
	compose, err := composeCommand()
	if err != nil {
		t.Skipf("skipping the compose suite: %v", err)
	}
	root := repoRoot(t)
	c := &cluster{
		t: t, root: root, file: filepath.Join(root, "deploy", "docker-compose.yml"), compose: compose,
		project: envOr("WITNESS_COMPOSE_PROJECT", "witnessnettest"), subnet: envOr("WITNESS_COMPOSE_SUBNET", "172.30.78"),
		netDir: t.TempDir(), nodes: []string{"node1", "node2", "node3", "node4"},
		apis: map[string]*API{}, ids: map[string]string{}, disabled: map[string]bool{}, rec: NewRecorder(), cpSeen: map[string]bool{},
	}
	c.env = []string{
		"WITNESS_NETWORK_DIR=" + c.netDir, "WITNESS_SUBNET=" + c.subnet,
		"WITNESS_IMAGE=" + envOr("WITNESS_IMAGE", "witnessnet:compose-test"), "WITNESS_EXTRA_CONFIG=" + extraConfig,
		"WITNESS_NODE1_PORT=28081", "WITNESS_NODE2_PORT=28082", "WITNESS_NODE3_PORT=28083", "WITNESS_NODE4_PORT=28084",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	c.must(run(ctx, c.env, filepath.Join(root, "deploy", "build.sh")))
	t.Logf("built binaries, image and network in %v", time.Since(start).Round(time.Millisecond))
	pol, err := os.ReadFile(filepath.Join(c.netDir, "policy.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if c.pol, err = ParsePolicy(pol); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		c.apis[n] = &API{Name: n, URL: "http://" + c.ip(n) + ":8080", HTTP: newHTTPClient(2 * time.Second)}
	}
	_, _ = c.composeRun(ctx, "down", "-v", "--remove-orphans") // leftovers of an interrupted run
	services := append([]string{}, c.nodes...)
	// The auditor runs `client audit`; until the client has that command it is left out.
	if _, err := run(ctx, nil, filepath.Join(root, "deploy", "bin", "client"), "audit", "--help"); err == nil {
		c.auditor = true
		services = append(services, "auditor")
	} else {
		t.Logf("auditor not started: `client audit` is not available (%s)", firstLine("", err))
	}
	t.Cleanup(func() { c.teardown(t) })
	start = time.Now()
	c.must(c.composeRun(ctx, append([]string{"up", "-d"}, services...)...))
	c.waitCaughtUp(t, c.nodes, 2*time.Minute)
	t.Logf("compose project %s up with a leader in %v (auditor: %v)", c.project, time.Since(start).Round(time.Millisecond), c.auditor)
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func firstLine(out string, err error) string {
	s := strings.TrimSpace(out)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	if s == "" {
		return err.Error()
	}
	return s
}

// teardown keeps the last logs of every service when the test failed, then removes the project
// unless WITNESS_COMPOSE_KEEP is set.
func (c *cluster) teardown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if t.Failed() {
		dir := envOr("WITNESS_COMPOSE_LOGS", filepath.Join(os.TempDir(), "witnessnet-compose-logs"))
		_ = os.MkdirAll(dir, 0o755)
		for _, s := range append(append([]string{}, c.nodes...), "auditor") {
			out, _ := c.composeRun(ctx, "logs", "--no-color", "--tail", "2000", s)
			_ = os.WriteFile(filepath.Join(dir, s+".log"), []byte(out), 0o644)
		}
		t.Logf("container logs kept in %s", dir)
	}
	if os.Getenv("WITNESS_COMPOSE_KEEP") != "" {
		t.Logf("WITNESS_COMPOSE_KEEP is set: project %s left running", c.project)
		return
	}
	if _, err := c.composeRun(ctx, "down", "-v", "--remove-orphans"); err != nil {
		t.Logf("compose down: %v", err)
	}
}

// watchCheckpoints polls every node's /checkpoint and keeps every distinct one it sees.
func (c *cluster) watchCheckpoints() {
	c.cpStop, c.cpDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.cpDone)
		tick := time.NewTicker(400 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.cpStop:
				return
			case <-tick.C:
			}
			for _, n := range c.nodes {
				c.fetchCheckpoint(n)
			}
		}
	}()
}

func (c *cluster) fetchCheckpoint(node string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := c.apis[node].Checkpoint(ctx)
	if err != nil {
		return // down, cut off, or no checkpoint with a quorum yet
	}
	c.cpMu.Lock()
	defer c.cpMu.Unlock()
	key := node + "\x00" + string(b)
	if c.cpSeen[key] {
		return
	}
	c.cpSeen[key] = true
	cp, err := ParseCheckpoint(b, c.pol)
	if err != nil {
		c.cpErrs = append(c.cpErrs, fmt.Errorf("%s served a checkpoint that does not verify: %w", node, err))
		return
	}
	cp.Node, cp.Seen = node, c.rec.Now()
	c.cps = append(c.cps, *cp)
}

func (c *cluster) stopWatching() ([]Checkpoint, []error) {
	close(c.cpStop)
	<-c.cpDone
	c.cpMu.Lock()
	defer c.cpMu.Unlock()
	return append([]Checkpoint(nil), c.cps...), append([]error(nil), c.cpErrs...)
}

// converge waits until every node reports the same log size, fully integrated and covered by a
// published checkpoint, and fetches every node's whole log.
func (c *cluster) converge(t *testing.T, timeout time.Duration) []NodeLog {
	t.Helper()
	var size uint64
	converged := pollUntil(timeout, func() bool {
		var sizes []uint64
		for _, n := range c.nodes {
			s, err := c.status(n)
			if err != nil || s.TreeSize != s.LogSize || s.CheckpointSize != s.LogSize {
				return false
			}
			sizes = append(sizes, s.LogSize)
		}
		for _, s := range sizes {
			if s != sizes[0] {
				return false
			}
		}
		size = sizes[0]
		return true
	})
	if !converged {
		for _, line := range c.explainFork(t) {
			t.Log(line)
		}
		t.Fatalf("timed out after %v waiting for all nodes at one size, integrated and checkpointed", timeout)
	}
	var logs []NodeLog
	for _, n := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		leaves, err := c.apis[n].Leaves(ctx, size)
		cancel()
		if err != nil {
			t.Fatalf("fetch %s's log: %v", n, err)
		}
		logs = append(logs, NodeLog{Node: n, Leaves: leaves})
	}
	return logs
}

// verifyHistory runs every check of the suite over the run.
func (c *cluster) verifyHistory(t *testing.T, ops []Op, logs []NodeLog, cps []Checkpoint, exempt func(Op) bool) {
	s := Summarize(ops)
	t.Logf("history: %d appends (%d acknowledged, %d refused, %d unknown), %d reads (%d found, %d not found, %d failed); log size %d; %d distinct checkpoints",
		s.Appends, s.Acked, s.AppendFailed, s.AppendUnknown, s.Reads, s.ReadFound, s.ReadNotFound, s.ReadUnknown, len(logs[0].Leaves), len(cps))
	final, errs := CheckLogs(ops, logs)
	report(t, "nothing acknowledged lost, no duplicates, no fork, all nodes converged", errs)
	report(t, "every published checkpoint has the converged log's root at its size", CheckCheckpoints(cps, logs[0].Leaves))
	api := c.apis[c.nodes[0]]
	pairs, errs := CheckConsistency(cps, func(old, size uint64) ([][]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return api.Consistency(ctx, old, size)
	})
	report(t, fmt.Sprintf("consistency proofs between %d successive checkpoint pairs", pairs), errs)
	var kept []Op
	for _, op := range ops {
		if !exempt(op) {
			kept = append(kept, op)
		}
	}
	report(t, "no node forgets an entry it served", MonotonicReads(kept, nil))
	if s.AppendFailed > 0 {
		var refused []error
		for _, op := range ops {
			if op.Kind == Append && op.Outcome == Failed {
				refused = append(refused, fmt.Errorf("valid append refused by %s: %d %s", op.Node, op.Status, op.Err))
			}
		}
		report(t, "no valid append refused", refused[:min(len(refused), 10)])
	}
	start := time.Now()
	res, n := CheckLinearizable(ops, final, 5*time.Minute)
	switch res {
	case porcupine.Ok:
		t.Logf("PASS linearizable: %d operations checked by porcupine in %v", n, time.Since(start).Round(time.Millisecond))
	default:
		t.Errorf("FAIL linearizable: porcupine says %s for %d operations (%v)", res, n, time.Since(start).Round(time.Millisecond))
	}
}

func report(t *testing.T, what string, errs []error) {
	t.Helper()
	if len(errs) == 0 {
		t.Logf("PASS %s", what)
		return
	}
	for i, err := range errs {
		if i == 20 {
			t.Errorf("... %d more", len(errs)-20)
			break
		}
		t.Errorf("FAIL %s: %v", what, err)
	}
}

// explainFork fetches what tells a fork apart when the nodes do not converge: every node's
// entries and level-0 hashes up to the smallest tree size among them, and the roots they hold
// evidence about (ExplainFork).
func (c *cluster) explainFork(t *testing.T) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := []string{"the nodes did not converge; what their logs show:"}
	var size uint64
	var up []string
	for _, n := range c.nodes {
		s, err := c.status(n)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: no status: %v", n, err))
			continue
		}
		out = append(out, fmt.Sprintf("%s: %+v", n, *s))
		if len(up) == 0 || s.TreeSize < size {
			size = s.TreeSize
		}
		up = append(up, n)
	}
	var logs []NodeLog
	tiles := map[string][][]byte{}
	var disputed []Disputed
	for _, n := range up {
		a := c.apis[n]
		leaves, err := a.Leaves(ctx, size)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: entries: %v", n, err))
			continue
		}
		logs = append(logs, NodeLog{Node: n, Leaves: leaves})
		if hashes, err := a.LeafHashes(ctx, size); err != nil {
			out = append(out, fmt.Sprintf("%s: level-0 tiles: %v", n, err))
		} else {
			tiles[n] = hashes
		}
		ev, err := a.Evidence(ctx)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: evidence: %v", n, err))
			continue
		}
		for _, e := range ev {
			for _, text := range []string{e.Theirs, e.Ours} {
				if text == "" {
					continue
				}
				cp, err := ParseCheckpoint([]byte(text), c.pol)
				if err != nil {
					out = append(out, fmt.Sprintf("%s: evidence note: %v", n, err))
					continue
				}
				disputed = append(disputed, Disputed{Size: cp.Size, Root: cp.Root, Signers: e.Signers, Found: n})
			}
		}
	}
	if len(disputed) > 8 {
		disputed = disputed[:8] // the first ones say where it began
	}
	return append(out, ExplainFork(logs, tiles, disputed)...)
}
