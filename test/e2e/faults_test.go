//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
)

// faultConfig is what the compose suite adds to every node's configuration: raft snapshots every
// second and a short log behind them, so that restarted and paused members catch up by snapshot
// as often as by log.
const faultConfig = `trailing_logs: 64
snapshot_threshold: 128
snapshot_interval: 1s
wal_segment_bytes: 65536
`

// TestFaultsKeepOneLog runs four members under load while one fault after another hits them:
// the leader or followers SIGKILLed and restarted, two followers killed together (no quorum until
// they return), the leader or a follower stopped (SIGSTOP) past the election timeout and
// resumed, the leader stopped with SIGTERM. A fifth of the acknowledged envelopes are submitted
// again, to another member, and must come back at the same index. Between faults, and at the
// end, no member may hold evidence that another cosigned a root it disagrees with; at the end
// every member must hold the same entries and tiles, every acknowledged envelope at its index,
// and a quorum checkpoint whose root the tiles recompute.
//
// WITNESS_FAULTS_DURATION sets how long faults go on (default 40s); WITNESS_FAULTS_KEEP names a
// directory to keep the members' data and logs in, for a long run hunting a rare failure;
// WITNESS_FAULTS_TRANSPORT=libp2p runs raft between the members over libp2p.
func TestFaultsKeepOneLog(t *testing.T) {
	duration := 40 * time.Second
	if v := os.Getenv("WITNESS_FAULTS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("WITNESS_FAULTS_DURATION: %v", err)
		}
		duration = d
	}
	var args []string
	if tr := os.Getenv("WITNESS_FAULTS_TRANSPORT"); tr != "" {
		args = []string{"--transport", tr}
	}
	nw := startNetworkWith(t, 4, 17900, os.Getenv("WITNESS_FAULTS_KEEP"), faultConfig, args...)
	f := &faults{nw: nw, s: newSubmitter(), acked: map[int]uint64{}, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	t.Logf("network in %s", nw.dir)

	ctx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	for w := range 16 {
		load.Add(1)
		go func() {
			defer load.Done()
			f.submitLoop(ctx, w)
		}()
	}

	end := time.Now().Add(duration)
	for time.Now().Before(end) && !t.Failed() {
		f.inject(t)
		f.checkEvidence(t)
		time.Sleep(time.Duration(500+f.rng.IntN(1500)) * time.Millisecond)
	}
	f.healAll(t)
	f.giveUpAt.Store(time.Now().Add(2 * time.Minute).UnixNano())
	stopLoad()
	load.Wait()
	if t.Failed() {
		t.FailNow()
	}
	f.mu.Lock()
	n, resubmitted := len(f.acked), f.resubmitted
	f.mu.Unlock()
	t.Logf("%d faults (%v); %d envelopes acknowledged, %d of them submitted twice", f.count, f.kinds, n, resubmitted)
	if n == 0 {
		t.Fatal("no envelope was acknowledged")
	}
	f.checkOneLog(t, uint64(n))
}

// faults drives the load and the faults of TestFaultsKeepOneLog.
type faults struct {
	nw  *network
	s   *submitter
	rng *rand.Rand // the fault loop's only

	mu          sync.Mutex
	acked       map[int]uint64 // envelope number -> index
	resubmitted int
	next        atomic.Int64

	count int
	kinds map[string]int

	// giveUpAt (Unix nanoseconds, 0 for never) is when a submission stops retrying: once every
	// member runs again, every envelope must be acknowledged soon.
	giveUpAt atomic.Int64
}

// submitLoop submits new envelopes until ctx ends, each to members in turn until one acknowledges
// it (an envelope that was started is finished, whatever ctx says, so that every envelope sent is
// acknowledged and counted). Now and then it submits an acknowledged envelope again, elsewhere.
func (f *faults) submitLoop(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		n := int(f.next.Add(1) - 1)
		env := f.s.envelope(n)
		idx, ok := f.submitUntilAcked(env, rng.IntN(len(f.nw.urls)))
		if !ok {
			f.nw.t.Errorf("envelope %d not acknowledged within 2 minutes of every member running again", n)
			return
		}
		f.mu.Lock()
		f.acked[n] = idx
		f.mu.Unlock()
		if rng.IntN(5) == 0 {
			again, ok := f.submitUntilAcked(env, rng.IntN(len(f.nw.urls)))
			f.mu.Lock()
			f.resubmitted++
			f.mu.Unlock()
			if ok && again != idx {
				f.nw.t.Errorf("envelope %d acknowledged at %d, then at %d when submitted again", n, idx, again)
			}
		}
	}
}

func (f *faults) submitUntilAcked(env []byte, first int) (uint64, bool) {
	for attempt := 0; ; attempt++ {
		if at := f.giveUpAt.Load(); at != 0 && time.Now().UnixNano() > at {
			return 0, false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		idx, ok := f.s.submit(ctx, f.nw.urls[(first+attempt)%len(f.nw.urls)], env)
		cancel()
		if ok {
			return idx, true
		}
		if attempt >= len(f.nw.urls) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// inject applies one fault, chosen at random, and undoes it.
func (f *faults) inject(t *testing.T) {
	nw := f.nw
	leader := nw.leader()
	follower := func(not ...int) int {
		for {
			i := f.rng.IntN(len(nw.urls))
			if i != leader && !slices.Contains(not, i) {
				return i
			}
		}
	}
	pause := func(lo, hi int) { time.Sleep(time.Duration(lo+f.rng.IntN(hi-lo)) * time.Millisecond) }
	killAndRestart := func(i int) {
		nw.kill(i)
		pause(200, 2000)
		f.restart(i)
	}
	var kind string
	switch f.rng.IntN(6) {
	case 0:
		kind = "leader-sigkill"
		killAndRestart(leader)
	case 1:
		kind = "follower-sigkill"
		killAndRestart(follower())
	case 2:
		kind = "two-followers-sigkill"
		i := follower()
		j := follower(i)
		nw.kill(i)
		nw.kill(j)
		pause(500, 3000)
		f.restart(i)
		f.restart(j)
	case 3:
		kind = "leader-sigstop"
		nw.signal(leader, syscall.SIGSTOP)
		pause(1500, 4000)
		nw.signal(leader, syscall.SIGCONT)
	case 4:
		kind = "follower-sigstop"
		i := follower()
		nw.signal(i, syscall.SIGSTOP)
		pause(500, 3000)
		nw.signal(i, syscall.SIGCONT)
	case 5:
		kind = "leader-sigterm"
		nw.signal(leader, syscall.SIGTERM)
		if !nw.waitExit(leader, 30*time.Second) {
			t.Errorf("node%d still ran 30 s after SIGTERM; its goroutines are in %s (SIGQUIT)", leader+1, filepath.Join(nw.dir, fmt.Sprintf("node%d.log", leader+1)))
		}
		f.restart(leader)
	}
	f.count++
	if f.kinds == nil {
		f.kinds = map[string]int{}
	}
	f.kinds[kind]++
	t.Logf("fault %d: %s (leader was node%d)", f.count, kind, leader+1)
}

func (f *faults) restart(i int) {
	f.nw.start(i)
	f.nw.waitHealthy(i)
}

// healAll resumes and starts every member, whatever the last fault left.
func (f *faults) healAll(t *testing.T) {
	for i := range f.nw.urls {
		if f.nw.procs[i] == nil {
			f.restart(i)
		} else {
			f.nw.signal(i, syscall.SIGCONT)
		}
	}
}

// checkEvidence fails the test if a member holds evidence of a disagreement: a member cosigned a
// root that differs from the one it computed at that size, or cosigned two roots at one size.
func (f *faults) checkEvidence(t *testing.T) {
	t.Helper()
	for i, u := range f.nw.urls {
		if f.nw.procs[i] == nil {
			continue
		}
		var ev struct {
			Evidence []json.RawMessage `json:"evidence"`
		}
		if err := getJSON(u+"/v1/evidence", &ev); err != nil {
			continue // restarting, or stopped
		}
		if len(ev.Evidence) > 0 {
			t.Errorf("node%d holds evidence of a disagreement between members (data in %s):\n%s", i+1, f.nw.dir, ev.Evidence[0])
		}
	}
}

// checkOneLog waits until every member publishes a quorum checkpoint of at least size entries,
// then compares what they serve.
func (f *faults) checkOneLog(t *testing.T, size uint64) {
	t.Helper()
	nw := f.nw
	policy := readPolicy(t, filepath.Join(nw.dir, "policy.txt"))
	var want [][]byte
	for i, u := range nw.urls {
		got, root := waitCheckpoint(t, u, policy, size)
		if got != size {
			t.Fatalf("node%d: checkpoint of %d entries, %d distinct envelopes acknowledged (lost or duplicated)", i+1, got, size)
		}
		leaves := bundles(t, u, size)
		if want == nil {
			want = leaves
		} else if at := firstDifference(want, leaves); at >= 0 {
			t.Fatalf("node%d holds another entry at index %d than node1 (data in %s)", i+1, at, nw.dir)
		}
		if r := rootFromTiles(t, u, size); !bytes.Equal(r, root) {
			t.Fatalf("node%d: root from tiles %x, checkpoint %x", i+1, r, root)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, idx := range f.acked {
		leaf, err := ledger.ParseLeaf(want[idx])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(leaf.Envelope, f.s.envelope(n)) {
			t.Fatalf("acknowledged envelope %d is not at index %d", n, idx)
		}
	}
	f.checkEvidence(t)
}

func firstDifference(a, b [][]byte) int {
	for i := range min(len(a), len(b)) {
		if !bytes.Equal(a[i], b[i]) {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// waitExit waits up to d for member i to exit and reaps it. If it is still running then, it is
// sent SIGQUIT, which makes a Go program print its goroutines and exit, and waitExit reports
// false.
func (nw *network) waitExit(i int, d time.Duration) bool {
	p := nw.procs[i]
	if p == nil {
		return true
	}
	exited := make(chan struct{})
	go func() {
		_ = p.Wait()
		close(exited)
	}()
	ok := true
	select {
	case <-exited:
	case <-time.After(d):
		ok = false
		_ = p.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-exited
		}
	}
	nw.procs[i] = nil
	return ok
}

// signal sends sig to member i if it runs.
func (nw *network) signal(i int, sig syscall.Signal) {
	if p := nw.procs[i]; p != nil {
		_ = p.Process.Signal(sig)
	}
}

// startNetworkWith is startNetwork with the network in dir (a new temporary directory if dir is
// empty) and extra appended to every member's configuration.
func startNetworkWith(t *testing.T, n, basePort int, dir, extra string, testnetArgs ...string) *network {
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, fmt.Sprintf("%s-%d", t.Name(), time.Now().Unix()))
	}
	return startNetworkIn(t, dir, n, basePort, extra, testnetArgs...)
}
