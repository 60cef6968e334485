package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/verify"
)

// signedMembership signs text as each named member and merges the copies.
func (tn *testNet) signedMembership(t *testing.T, text []byte, signers ...string) []byte {
	var copies [][]byte
	for _, name := range signers {
		for _, m := range tn.members {
			if m.name == name {
				c, err := verify.SignMembership(text, name, m.witPriv)
				if err != nil {
					t.Fatal(err)
				}
				copies = append(copies, c)
			}
		}
	}
	out, err := verify.AddMembershipSignatures(copies...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func membershipVersion(t *testing.T, m *testMember) uint64 {
	var resp membershipResponse
	if code := getJSON(t, m.url()+"/v1/membership", &resp); code != http.StatusOK {
		t.Fatalf("GET /v1/membership on %s: %d", m.name, code)
	}
	return resp.Version
}

func TestMembershipGovernsQuorum(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]uint64{} // member -> last version announced to OnMembership
	tn := startTestNet(&testNet{t: t, quorum: 3, genesisK: 3, tune: func(c *Config) {
		name := c.Name
		c.OnMembership = func(v uint64, _ map[string]string) { mu.Lock(); seen[name] = v; mu.Unlock() }
	}}, 3)
	tn.leader()
	s := newSigner(t)
	if code, out := post(t, tn.members[0].url(), s.body([]byte(`{"n":1}`))); code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, out)
	}
	tn.waitCheckpoint(tn.members[0], 1)
	if v := membershipVersion(t, tn.members[1]); v != 1 {
		t.Fatalf("genesis version %d", v)
	}
	lower := tn.genesis(2, 2)
	for _, tc := range []struct {
		signers []string
		want    int
	}{
		{[]string{"node1"}, http.StatusForbidden},
		{[]string{"node1", "node2"}, http.StatusForbidden}, // the current quorum is 3 of 3
		{[]string{"node1", "node2", "node3"}, http.StatusCreated},
		{[]string{"node1", "node2", "node3"}, http.StatusConflict}, // version 2 no longer follows
	} {
		body := tn.signedMembership(t, lower, tc.signers...)
		resp, err := http.Post(tn.members[2].url()+"/v1/membership", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// A node that has not applied the change yet refuses after replication (409), one that
		// has refuses before (403).
		if resp.StatusCode != tc.want && !(tc.want == http.StatusConflict && resp.StatusCode == http.StatusForbidden) {
			t.Fatalf("signed by %v: %d %s, want %d", tc.signers, resp.StatusCode, msg, tc.want)
		}
	}
	for _, m := range tn.members {
		deadline := time.Now().Add(10 * time.Second)
		for membershipVersion(t, m) != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("%s never applied version 2", m.name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Every node announced version 2 to its p2p layer (the libp2p allowlist follows it).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		done := seen["node1"] == 2 && seen["node2"] == 2 && seen["node3"] == 2
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnMembership saw %v", seen)
		}
	}
	// With one member down, two cosignatures now make a quorum checkpoint.
	tn.stop(tn.members[2])
	tn.quorum = 2
	tn.leader()
	var out map[string]any
	for i := 2; ; i++ {
		code, o := post(t, tn.members[0].url(), s.body(fmt.Appendf(nil, `{"n":%d}`, i)))
		if code == http.StatusCreated {
			out = o
			break
		}
		if i > 50 {
			t.Fatalf("submit after stop: %d %v", code, o)
		}
		time.Sleep(50 * time.Millisecond)
	}
	idx := uint64(out["index"].(float64))
	_, names := tn.waitCheckpoint(tn.members[0], idx+1)
	if len(names) != 2 {
		t.Fatalf("cosigners %v", names)
	}
	b, _ := json.Marshal(names)
	t.Logf("checkpoint at %d cosigned by %s under membership version 2", idx+1, b)
}
