package node

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A node that comes back after the others logged many entries says that it is catching up, how
// far it is, and when it has caught up.
func TestCatchUpIsReported(t *testing.T) {
	logs := map[string]*syncBuffer{"node1": {}, "node2": {}, "node3": {}}
	tn := newTestNet(t, 3, func(c *Config) {
		c.CatchUpReport, c.CatchUpThreshold = 5*time.Millisecond, 1
		c.Logger = slog.New(slog.NewTextHandler(logs[c.Name], nil))
	})
	lead := tn.leader()
	late := tn.members[2]
	if late == lead {
		late = tn.members[1]
	}
	tn.stop(late)
	// Enough entries that catching up takes many of the report's ticks.
	s := newSigner(t)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				var bodies [][]byte
				for j := range 100 {
					bodies = append(bodies, s.body(fmt.Appendf(nil, `{"w":%d,"i":%d,"j":%d}`, w, i, j)))
				}
				if code, _, raw := postBatch(t, lead.url(), bodies...); code != http.StatusOK {
					t.Errorf("submit: %d %s", code, raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	tn.start(late)
	log := logs[late.name]
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), "caught up") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := log.String()
	if !strings.Contains(out, "msg=\"catching up\"") || !strings.Contains(out, "caught up") {
		t.Fatalf("no catch-up report in the late node's log:\n%s", out)
	}
}

func TestETA(t *testing.T) {
	for _, c := range []struct {
		raft      uint64
		applyRate float64
		tree      uint64
		treeRate  float64
		want      time.Duration
	}{
		{1000, 500, 0, 0, 2 * time.Second},
		{1000, 500, 3000, 1000, 3 * time.Second},
		{1000, 0, 0, 0, 0},
		{0, 0, 10, 0, 0},
		{0, 0, 0, 0, 0},
	} {
		if got := etaOf(c.raft, c.applyRate, c.tree, c.treeRate); got != c.want {
			t.Errorf("etaOf(%d, %v, %d, %v) = %v, want %v", c.raft, c.applyRate, c.tree, c.treeRate, got, c.want)
		}
	}
}
