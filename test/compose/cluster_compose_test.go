//go:build compose

package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// cluster drives one compose project of deploy/docker-compose.yml from the host: docker for the
// faults, each node's HTTP API (on its fixed address in the project's network) for observing.
type cluster struct {
	t        testing.TB
	root     string   // repository root
	file     string   // the compose file
	compose  []string // "docker compose" or "docker-compose"
	project  string
	env      []string
	netDir   string
	subnet   string
	nodes    []string
	apis     map[string]*API
	pol      *Policy
	rec      *Recorder
	disabled map[string]bool // nodes the suite has cut off or stopped on purpose
	idMu     sync.Mutex
	ids      map[string]string // service -> container id

	cpMu    sync.Mutex
	cps     []Checkpoint
	cpSeen  map[string]bool
	cpErrs  []error
	cpStop  chan struct{}
	cpDone  chan struct{}
	auditor bool
}

func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// run runs a command, returning its combined output.
func run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), err
}

// composeCommand finds Compose v2 (docker compose) or v1 (docker-compose).
func composeCommand() ([]string, error) {
	if _, err := run(context.Background(), nil, "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}, nil
	}
	if _, err := run(context.Background(), nil, "docker-compose", "version"); err == nil {
		return []string{"docker-compose"}, nil
	}
	return nil, errors.New("neither `docker compose` nor `docker-compose` works")
}

func (c *cluster) composeRun(ctx context.Context, args ...string) (string, error) {
	full := append(append([]string{}, c.compose[1:]...), "-p", c.project, "-f", c.file)
	return run(ctx, c.env, c.compose[0], append(full, args...)...)
}

func (c *cluster) must(out string, err error) string {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *cluster) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return run(ctx, nil, "docker", args...)
}

// container returns a service's container id. Ids are kept: stopping and starting a container
// keeps its id, and asking compose each time costs most of a second.
func (c *cluster) container(service string) string {
	c.t.Helper()
	c.idMu.Lock()
	defer c.idMu.Unlock()
	if id, ok := c.ids[service]; ok {
		return id
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := strings.TrimSpace(c.must(c.composeRun(ctx, "ps", "-q", service)))
	if id == "" {
		c.t.Fatalf("no container for %s", service)
	}
	c.ids[service] = id
	return id
}

func (c *cluster) network() string { return c.project + "_witnessnet" }

func (c *cluster) ip(node string) string {
	return fmt.Sprintf("%s.%d", c.subnet, 10+nodeNumber(node))
}

func nodeNumber(node string) int {
	var n int
	fmt.Sscanf(node, "node%d", &n)
	return n
}

// The faults. Each MUST leave the container in a state heal() can undo.

func (c *cluster) kill(node string) {
	c.disabled[node] = true
	c.must(c.docker("kill", "-s", "KILL", c.container(node)))
}

func (c *cluster) stop(node string) time.Duration {
	c.disabled[node] = true
	start := time.Now()
	c.must(c.docker("stop", "-t", "20", c.container(node)))
	return time.Since(start)
}

func (c *cluster) start(node string) {
	c.must(c.docker("start", c.container(node)))
	delete(c.disabled, node)
}

func (c *cluster) pause(node string) {
	c.disabled[node] = true
	c.must(c.docker("pause", c.container(node)))
}

func (c *cluster) unpause(node string) {
	c.must(c.docker("unpause", c.container(node)))
	delete(c.disabled, node)
}

func (c *cluster) disconnect(node string) {
	c.disabled[node] = true
	c.must(c.docker("network", "disconnect", c.network(), c.container(node)))
}

func (c *cluster) connect(node string) {
	c.must(c.docker("network", "connect", "--ip", c.ip(node), "--alias", node, c.network(), c.container(node)))
	delete(c.disabled, node)
}

// containerState is docker's view: running, paused, exited; and whether it is on the network.
func (c *cluster) containerState(node string) (state string, connected bool) {
	out, err := c.docker("inspect", "-f", "{{.State.Status}} {{json .NetworkSettings.Networks}}", c.container(node))
	if err != nil {
		c.t.Fatal(err)
	}
	state, nets, _ := strings.Cut(strings.TrimSpace(out), " ")
	return state, strings.Contains(nets, `"`+c.network()+`"`)
}

// heal undoes every fault: each node running, unpaused, on the network; then waits for a leader
// and for every node to have caught up.
func (c *cluster) heal(t testing.TB) {
	t.Helper()
	for _, n := range c.nodes {
		state, connected := c.containerState(n)
		switch state {
		case "paused":
			c.unpause(n)
		case "exited", "created", "dead":
			c.start(n)
		}
		if !connected {
			c.connect(n)
		}
		delete(c.disabled, n)
	}
	c.waitCaughtUp(t, c.nodes, 90*time.Second)
}

// status asks one node, briefly.
func (c *cluster) status(node string) (*Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.apis[node].Status(ctx)
}

// leaderAmong returns the leader if one of nodes reports itself leader and every other answering
// node among them agrees.
func (c *cluster) leaderAmong(nodes []string) (string, uint64, bool) {
	var leader string
	var term uint64
	for _, n := range nodes {
		s, err := c.status(n)
		if err != nil {
			continue
		}
		if strings.EqualFold(s.RaftState, "leader") {
			if leader != "" && leader != n {
				return "", 0, false
			}
			leader, term = n, s.Term
		}
	}
	if leader == "" {
		return "", 0, false
	}
	for _, n := range nodes {
		if s, err := c.status(n); err == nil && s.Leader != leader {
			return "", 0, false
		}
	}
	return leader, term, true
}

// waitLeader polls until nodes agree on a leader that is not one of excluded.
func (c *cluster) waitLeader(t testing.TB, nodes []string, excluded []string, timeout time.Duration) (string, uint64) {
	t.Helper()
	var leader string
	var term uint64
	c.poll(t, timeout, fmt.Sprintf("a leader among %v other than %v", nodes, excluded), func() bool {
		l, tm, ok := c.leaderAmong(nodes)
		if !ok {
			return false
		}
		for _, e := range excluded {
			if l == e {
				return false
			}
		}
		leader, term = l, tm
		return true
	})
	return leader, term
}

// waitCaughtUp waits for a leader among nodes, then for each of them to apply everything the
// leader had applied when the wait began.
func (c *cluster) waitCaughtUp(t testing.TB, nodes []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	leader, _ := c.waitLeader(t, nodes, nil, timeout)
	ls, err := c.status(leader)
	if err != nil {
		t.Fatalf("leader %s: %v", leader, err)
	}
	c.poll(t, time.Until(deadline), fmt.Sprintf("%v to apply %s's index %d", nodes, leader, ls.AppliedIndex), func() bool {
		for _, n := range nodes {
			s, err := c.status(n)
			if err != nil || s.AppliedIndex < ls.AppliedIndex {
				return false
			}
		}
		return true
	})
}

// poll calls cond until it holds, failing the test after timeout.
func (c *cluster) poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !pollUntil(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond) // the poll interval of a condition with a deadline
	}
}

// others returns the nodes except the given ones.
func (c *cluster) others(except ...string) []string {
	var out []string
	for _, n := range c.nodes {
		skip := false
		for _, e := range except {
			skip = skip || n == e
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// followers returns k nodes that are not the leader.
func (c *cluster) followers(leader string, k int) []string {
	f := c.others(leader)
	sort.Strings(f)
	return f[:k]
}

// logs returns a service's recent container logs.
func (c *cluster) logs(node string, since time.Time) string {
	out, _ := c.docker("logs", "--since", since.UTC().Format(time.RFC3339Nano), c.container(node))
	return out
}
