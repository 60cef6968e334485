package node

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/consensus"
)

// membershipWithRaft is a membership text naming members, with a k-of-n quorum and each
// member's raft address.
func membershipWithRaft(version uint64, k int, members []*testMember) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "witnessnet membership v1\nversion %d\n", version)
	var names []string
	for _, m := range members {
		fmt.Fprintf(&b, "log %s\n", m.logVkey)
	}
	for _, m := range members {
		fmt.Fprintf(&b, "witness %s %s %s\n", m.name, m.witVkey, m.url())
		names = append(names, m.name)
	}
	fmt.Fprintf(&b, "group members %d %s\nquorum members\n", k, strings.Join(names, " "))
	for _, m := range members {
		fmt.Fprintf(&b, "raft %s %s\n", m.name, m.raftAddr)
	}
	return []byte(b.String())
}

func (tn *testNet) proposeMembership(t *testing.T, to *testMember, text []byte, signers ...string) {
	t.Helper()
	body := tn.signedMembership(t, text, signers...)
	resp, err := http.Post(to.url()+"/v1/membership", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("membership: %d %s", resp.StatusCode, msg)
	}
}

// An organization joins a running network and another leaves, by membership versions alone:
// the joining node starts in join mode, the leader makes it a raft voter once a version signed
// by the current quorum names it, it catches up and its cosignatures count; a later version
// without a member removes it from raft, and the rest carry on without it.
func TestJoinAndLeaveByMembership(t *testing.T) {
	var genesis []byte
	tn := &testNet{t: t, quorum: 3}
	tn.tune = func(c *Config) {
		if genesis == nil {
			genesis = membershipWithRaft(1, 3, tn.members[:3])
		}
		c.Genesis = genesis
		c.Join = c.Name == "node4"
	}
	startTestNet(tn, 3)
	tn.leader()
	s := newSigner(t)
	for i := range 5 {
		if code, out := post(t, tn.members[i%3].url(), s.body(fmt.Appendf(nil, `{"before":%d}`, i))); code != http.StatusCreated {
			t.Fatalf("submit: %d %v", code, out)
		}
	}
	tn.waitCheckpoint(tn.members[0], 5)

	m4, rl := newTestMember(t, t.TempDir(), "node4")
	rl.Close()
	tn.members = append(tn.members, m4)
	tn.start(m4)
	// Version 2 names node4 (3 of 4), signed by the whole current quorum.
	tn.proposeMembership(t, tn.members[0], membershipWithRaft(2, 3, tn.members), "node1", "node2", "node3")
	deadline := time.Now().Add(20 * time.Second)
	for m4.node.ledger.Size() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the joining node holds %d entries", m4.node.ledger.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, out := post(t, m4.url(), s.body([]byte(`{"joined":1}`))); code != http.StatusCreated {
		t.Fatalf("submit through the joined node: %d %v", code, out)
	}
	_, names := tn.waitCheckpoint(tn.members[0], 6)
	for deadline := time.Now().Add(20 * time.Second); !slices.Contains(names, "node4"); {
		if time.Now().After(deadline) {
			t.Fatalf("node4 never cosigned a published checkpoint: %v", names)
		}
		if code, _ := post(t, tn.members[0].url(), s.body(fmt.Appendf(nil, `{"t":%d}`, time.Now().UnixNano()))); code != http.StatusCreated {
			t.Fatal("submit")
		}
		_, names = tn.waitCheckpoint(tn.members[0], 7)
		time.Sleep(50 * time.Millisecond)
	}

	// Version 3 drops node2 (3 of 3: node1, node3, node4), signed by 3 of version 2's members.
	rest := []*testMember{tn.members[0], tn.members[2], m4}
	tn.proposeMembership(t, tn.members[2], membershipWithRaft(3, 3, rest), "node1", "node3", "node4")
	deadline = time.Now().Add(20 * time.Second)
	for {
		lead := tn.leader()
		if lead.name != "node2" {
			if vs, err := lead.node.voters.(*consensus.Node).Voters(); err == nil && len(vs) == 3 &&
				!slices.ContainsFunc(vs, func(p consensus.Peer) bool { return p.ID == "node2" }) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("node2 was never removed from raft")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tn.stop(tn.members[1])
	tn.quorum = 3
	var idx uint64
	for i := 0; ; i++ {
		code, out := post(t, tn.members[0].url(), s.body(fmt.Appendf(nil, `{"after":%d}`, i)))
		if code == http.StatusCreated {
			idx = uint64(out["index"].(float64))
			break
		}
		if i > 100 {
			t.Fatalf("the network without node2: %d %v", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, names := tn.waitCheckpoint(tn.members[2], idx+1); slices.Contains(names, "node2") {
		t.Fatalf("cosigners %v", names)
	}
}
