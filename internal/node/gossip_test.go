package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/p2p"
)

// startGossip starts one libp2p host with gossipsub per member name, over loopback sockets,
// each admitting only the others, and keeps them connected.
func startGossip(t *testing.T, names []string) map[string]Gossip {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys := map[string]ed25519.PrivateKey{}
	var members []p2p.Member
	for _, name := range names {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		id, err := p2p.PeerID(k.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
		members = append(members, p2p.Member{Name: name, ID: id})
	}
	hosts := map[string]*p2p.Host{}
	for _, name := range names {
		h, err := p2p.New(ctx, p2p.Config{Identity: keys[name], ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Members: members, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hosts[name] = h
	}
	for i := range members {
		members[i].Addrs = hosts[members[i].Name].Addrs()
	}
	out := map[string]Gossip{}
	for _, name := range names {
		hosts[name].SetMembers(members)
		g, err := p2p.NewGossip(ctx, hosts[name])
		if err != nil {
			t.Fatal(err)
		}
		go hosts[name].KeepConnected(ctx, 200*time.Millisecond)
		out[name] = p2p.Bytes{G: g}
	}
	return out
}

// A member's forged cosignature pushed to one node only reaches the others through gossip: each
// checks the notes itself and ends up holding evidence that names the liar; quorum checkpoints
// travel the same way.
func TestGossipSpreadsEvidence(t *testing.T) {
	gossips := startGossip(t, []string{"node1", "node2", "node3"})
	tn := newTestNet(t, 3, func(c *Config) { c.Gossip = gossips[c.Name] })
	tn.leader()
	s := newSigner(t)
	if code, out := post(t, tn.members[0].url(), s.body([]byte(`{"n":1}`))); code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, out)
	}
	victim, liar, bystander := tn.members[0], tn.members[1], tn.members[2]
	tn.waitCheckpoint(victim, 1)
	tn.waitCheckpoint(bystander, 1)

	forged := forgeCheckpoint(t, liar, 1)
	resp, err := http.Post(victim.url()+"/v1/cosignatures", "text/plain", bytes.NewReader(forged))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	deadline := time.Now().Add(20 * time.Second)
	for {
		var ev struct {
			Evidence []Evidence `json:"evidence"`
		}
		getJSON(t, bystander.url()+"/v1/evidence", &ev)
		named := false
		for _, e := range ev.Evidence {
			for _, who := range e.Signers {
				named = named || who == liar.name
			}
		}
		if named {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bystander never learned of the forged checkpoint: %+v", ev)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := counterValue(bystander.node.metrics.gossipReceived.WithLabelValues("evidence")); got < 1 {
		t.Fatalf("evidence messages received by gossip: %v", got)
	}
	checkpoints := 0.0
	for _, m := range tn.members {
		checkpoints += counterValue(m.node.metrics.gossipReceived.WithLabelValues("checkpoint"))
	}
	if checkpoints < 1 {
		t.Fatal("no quorum checkpoint travelled by gossip")
	}
}
