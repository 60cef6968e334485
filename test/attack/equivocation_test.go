package attack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/witnessnet/witnessnet/internal/consensus"
	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/node"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// equivocator is the leader's raft transport, lying to one follower: every entry it replicates
// to the victim carries a different envelope byte than what the others get.
type equivocator struct {
	raft.Transport
	victim raft.ServerAddress
	lied   atomic.Int64
}

func (e *equivocator) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if target == e.victim {
		forged := *args
		forged.Entries = make([]*raft.Log, len(args.Entries))
		for i, l := range args.Entries {
			forged.Entries[i] = e.tamper(l)
		}
		args = &forged
	}
	return e.Transport.AppendEntries(id, target, args, resp)
}

// AppendEntriesPipeline is refused so that every append goes through AppendEntries.
func (e *equivocator) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (e *equivocator) tamper(l *raft.Log) *raft.Log {
	if l.Type != raft.LogCommand {
		return l
	}
	c, err := consensus.DecodeCommand(l.Data)
	if err != nil || c.Kind != uint8(ledger.KindEntries) {
		return l
	}
	var recs [][]byte
	for _, raw := range c.Records {
		var r ledger.Record
		if r.UnmarshalBinary(raw) != nil {
			recs = append(recs, raw)
			continue
		}
		leaf := bytes.Clone(r.Leaf)
		leaf[len(leaf)/2] ^= 0x01 // same identity, another leaf
		r.Leaf = leaf
		b, _ := r.MarshalBinary()
		recs = append(recs, b)
	}
	cp := *l
	cp.Data = consensus.EncodeCommand(c.Kind, c.Stamp, recs)
	e.lied.Add(1)
	return &cp
}

type submitter struct {
	priv ed25519.PrivateKey
	pem  string
}

func newSubmitter() *submitter {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(priv.Public())
	return &submitter{priv: priv, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

func (s *submitter) submit(url string, n int) (int, error) {
	payload := fmt.Appendf(nil, `{"attack":%d}`, n)
	sig := ed25519.Sign(s.priv, verify.PAE("application/json", payload))
	env, _ := json.Marshal(map[string]any{"payloadType": "application/json", "payload": base64.StdEncoding.EncodeToString(payload),
		"signatures": []map[string]string{{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}}})
	body, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(env), "public_keys": []string{s.pem}})
	resp, err := http.Post(url+"/v1/entries", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func fetch(url string) ([]byte, int) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

// TestEquivocatingLeader: the leader sends one follower different entries than the others. The
// lied-to follower computes another root and cosigns only that; the honest majority's
// checkpoints carry the quorum. No node ever serves a checkpoint with a quorum over the forged
// tree, so no client with the default policy (3 of 4) accepts the forked view, and the
// members who saw the disagreement hold evidence of it.
func TestEquivocatingLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var liar *equivocator
	var victimAddr string
	// node1 is made the liar by giving it the equivocating transport; raft picks the leader, so
	// the test waits until node1 leads before writing.
	nw, err := localnet.Start(ctx, localnet.Config{Nodes: 4, Dir: t.TempDir(), Tune: func(c *node.Config) {
		if c.Name != "node1" {
			// The others wait longer before standing for election, so node1 wins the first one.
			c.Consensus.ElectionTimeout, c.Consensus.HeartbeatTimeout = 3*time.Second, 3*time.Second
			return
		}
		tcp, err := raft.NewTCPTransport(c.RaftAddr, nil, 4, 5*time.Second, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		victimAddr = c.Peers[3].RaftAddr
		liar = &equivocator{Transport: tcp, victim: raft.ServerAddress(victimAddr)}
		c.RaftTransport = liar
		c.Consensus.ElectionTimeout = 150 * time.Millisecond
		c.Consensus.HeartbeatTimeout = 150 * time.Millisecond
		c.Consensus.LeaderLeaseTimeout = 100 * time.Millisecond
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	for {
		if l, err := nw.Leader(ctx); err != nil {
			t.Fatal(err)
		} else if l == 0 {
			break
		}
		// Another node leads: move leadership by restarting it until node1 wins.
		l, _ := nw.Leader(ctx)
		nw.Stop(ctx, l)
		if err := nw.Start(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	s := newSubmitter()
	for i := range 20 {
		if code, err := s.submit(nw.URLs()[0], i); err != nil || code != http.StatusCreated {
			t.Fatalf("submit %d: %d %v", i, code, err)
		}
	}
	if liar.lied.Load() == 0 {
		t.Fatal("the leader never lied to the victim")
	}
	policy, err := verify.ParsePolicy(nw.Policy)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the honest members publish a checkpoint covering the entries.
	deadline := time.Now().Add(30 * time.Second)
	var honestRoot []byte
	for honestRoot == nil && time.Now().Before(deadline) {
		if b, code := fetch(nw.URLs()[1] + "/checkpoint"); code == 200 {
			if cp, _, err := policy.VerifyCheckpoint(b); err == nil && cp.Size >= 20 {
				honestRoot = cp.Root
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if honestRoot == nil {
		t.Fatal("the honest majority published no checkpoint")
	}
	// Every checkpoint any node serves that satisfies the policy is over the honest tree.
	for i, u := range nw.URLs() {
		b, code := fetch(u + "/checkpoint")
		if code != 200 {
			continue // the victim cannot gather a quorum for its own root
		}
		cp, _, err := policy.VerifyCheckpoint(b)
		if err != nil {
			t.Fatalf("node%d serves a checkpoint that fails the policy: %v", i+1, err)
		}
		if cp.Size >= 20 {
			honest, _, _ := policy.VerifyCheckpoint(mustFetch(t, nw.URLs()[1]+"/checkpoint"))
			if cp.Size == honest.Size && !bytes.Equal(cp.Root, honest.Root) {
				t.Fatalf("node%d serves a forked checkpoint with a quorum", i+1)
			}
		}
	}
	// The victim saw the others cosign a tree that is not its own: it holds evidence.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var ev struct {
			Evidence []node.Evidence `json:"evidence"`
		}
		b, _ := fetch(nw.URLs()[3] + "/v1/evidence")
		json.Unmarshal(b, &ev)
		if len(ev.Evidence) > 0 {
			t.Logf("the lied-to member holds evidence: at size %d, %v cosigned another root", ev.Evidence[0].Size, ev.Evidence[0].Signers)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lied-to member holds no evidence")
		}
	}
}

func mustFetch(t *testing.T, url string) []byte {
	b, code := fetch(url)
	if code != 200 {
		t.Fatalf("%s: %d", url, code)
	}
	return b
}
