package consensus

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A member that joins (no bootstrap) is added by the leader, receives the whole log, and votes;
// a removed member stops counting. SetVoters is a no-op when raft already has the wanted set.
func TestSetVotersJoinAndLeave(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	for i := range 20 {
		if err := propose(t, lead.node, fmt.Sprint("before-", i)); err != nil {
			t.Fatal(err)
		}
	}
	// A fourth member starts in join mode: it must not elect itself or bootstrap a cluster.
	_, tr := raft.NewInmemTransport("n4")
	m4 := &member{id: "n4", dir: filepath.Join(t.TempDir(), "n4"), trans: tr, wire: tr}
	c.members = append(c.members, m4)
	c.connectAll()
	join := c.tune
	c.tune = func(cfg *Config) {
		if join != nil {
			join(cfg)
		}
		cfg.Join = cfg.ID == "n4"
	}
	c.start(m4)
	time.Sleep(300 * time.Millisecond)
	if m4.node.IsLeader() || len(m4.sm.records()) != 0 {
		t.Fatal("a joining member acted before it was added")
	}
	want := []Peer{{ID: "n1", Address: "n1"}, {ID: "n2", Address: "n2"}, {ID: "n3", Address: "n3"}, {ID: "n4", Address: "n4"}}
	lead = c.leader()
	if changed, err := lead.node.SetVoters(want, 5*time.Second); err != nil || !changed {
		t.Fatalf("SetVoters: %v %v", changed, err)
	}
	if changed, err := lead.node.SetVoters(want, 5*time.Second); err != nil || changed {
		t.Fatalf("SetVoters again: %v %v", changed, err)
	}
	// Another address for a voter raft has: left alone (a wrong line must not cut a member off).
	moved := append([]Peer{{ID: "n1", Address: "elsewhere"}}, want[1:]...)
	if changed, err := lead.node.SetVoters(moved, 5*time.Second); err != nil || changed {
		t.Fatalf("SetVoters with another address: %v %v", changed, err)
	}
	c.waitConverged(20)
	ids := func(n *Node) []string {
		vs, err := n.Voters()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(m4.node); !slices.Equal(got, []string{"n1", "n2", "n3", "n4"}) {
		t.Fatalf("the joined member sees voters %v", got)
	}
	// Remove n1 (whoever leads): three voters remain, and with one of them down (n2) the other
	// two still commit, which needs n4's vote.
	lead = c.leader()
	if _, err := lead.node.SetVoters(want[1:], 5*time.Second); err != nil {
		t.Fatalf("SetVoters without n1: %v", err)
	}
	var rest []*member
	for _, m := range c.members {
		if m.id != "n1" {
			rest = append(rest, m)
		}
	}
	c.stop(c.members[0])
	c.stop(c.members[1])
	lead = c.leader(rest[1:]...)
	if got := ids(lead.node); !slices.Equal(got, []string{"n2", "n3", "n4"}) {
		t.Fatalf("voters after removing n1: %v", got)
	}
	if err := propose(t, lead.node, "after"); err != nil {
		t.Fatalf("n3 and n4 could not commit with n1 removed and n2 down: %v", err)
	}
}
