package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "witnessnet.test/log"

// testMember is everything one member of an in-process network needs.
type testMember struct {
	name     string
	dir      string
	httpLn   net.Listener
	raftAddr string
	logSkey  string
	logVkey  string
	witSkey  string
	witVkey  string // cosignature/v1
	witPriv  ed25519.PrivateKey
	addr     string
	node     *Node
}

// kOfN is a quorum of k distinct names out of a set.
type kOfN struct {
	k     int
	names map[string]bool
}

func KOfN(k int, names []string) quorum {
	q := kOfN{k: k, names: map[string]bool{}}
	for _, n := range names {
		q.names[n] = true
	}
	return q
}

func (q kOfN) Satisfied(ws []string) bool {
	c := 0
	for _, w := range ws {
		if q.names[w] {
			c++
		}
	}
	return c >= q.k
}

type testNet struct {
	t       testing.TB
	members []*testMember
	quorum  int
	tune    func(*Config)
	// genesisK > 0 governs the network by a replicated membership with a genesisK-of-n quorum.
	genesisK int
}

// newTestNet starts n members on loopback: real raft over TCP with raft-wal on disk, real ledgers
// and witnesses on bbolt, real HTTP.
func newTestNet(t testing.TB, n int, tune func(*Config)) *testNet {
	return startTestNet(&testNet{t: t, quorum: 2*n/3 + 1, tune: tune}, n)
}

func startTestNet(tn *testNet, n int) *testNet {
	t := tn.t
	base := t.TempDir()
	// Raft ports stay reserved until every member has one, so that no two members share one.
	var reserved []net.Listener
	for i := range n {
		m, rl := newTestMember(t, base, fmt.Sprintf("node%d", i+1))
		reserved = append(reserved, rl)
		tn.members = append(tn.members, m)
	}
	for _, l := range reserved {
		l.Close()
	}
	for _, m := range tn.members {
		tn.start(m)
	}
	t.Cleanup(func() {
		for _, m := range tn.members {
			if m.node != nil {
				m.node.Shutdown(context.Background())
			}
		}
	})
	return tn
}

// newTestMember makes a member's keys and its HTTP listener, and reserves a raft port: the
// returned listener holds it until closed.
func newTestMember(t testing.TB, base, name string) (*testMember, net.Listener) {
	m := &testMember{name: name, dir: filepath.Join(base, name)}
	var err error
	if m.logSkey, m.logVkey, err = note.GenerateKey(rand.Reader, testOrigin); err != nil {
		t.Fatal(err)
	}
	var wv string
	if m.witSkey, wv, err = note.GenerateKey(rand.Reader, m.name); err != nil {
		t.Fatal(err)
	}
	if m.witVkey, err = fnote.VKeyToCosignatureV1(wv); err != nil {
		t.Fatal(err)
	}
	m.witPriv = seedOf(t, m.witSkey)
	if m.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.raftAddr = rl.Addr().String()
	return m, rl
}

func seedOf(t testing.TB, skey string) ed25519.PrivateKey {
	k, err := WitnessPrivateKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (tn *testNet) config(m *testMember) Config {
	t := tn.t
	signer, err := note.NewSigner(m.logSkey)
	if err != nil {
		t.Fatal(err)
	}
	var peers []Peer
	var logVs, witVs []note.Verifier
	var names []string
	for _, o := range tn.members {
		peers = append(peers, Peer{Name: o.name, RaftAddr: o.raftAddr, URL: "http://" + o.httpLn.Addr().String(), ForwardKey: o.witPriv.Public().(ed25519.PublicKey)})
		lv, err := note.NewVerifier(o.logVkey)
		if err != nil {
			t.Fatal(err)
		}
		wv, err := fnote.NewVerifierForCosignatureV1(o.witVkey)
		if err != nil {
			t.Fatal(err)
		}
		logVs, witVs, names = append(logVs, lv), append(witVs, wv), append(names, o.name)
	}
	cfg := Config{
		Name: m.name, Origin: testOrigin, DataDir: m.dir, HTTPListener: m.httpLn, RaftAddr: m.raftAddr, Peers: peers,
		LogSigner: signer, LogVerifiers: logVs, WitnessKey: m.witPriv, WitnessSkey: m.witSkey, Witnesses: witVs,
		Quorum: KOfN(tn.quorum, names), CheckpointInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	cfg.Consensus.HeartbeatTimeout = 200 * time.Millisecond
	cfg.Consensus.ElectionTimeout = 200 * time.Millisecond
	cfg.Consensus.LeaderLeaseTimeout = 100 * time.Millisecond
	if tn.genesisK > 0 {
		cfg.Genesis = tn.genesis(1, tn.genesisK)
	}
	if tn.tune != nil {
		tn.tune(&cfg)
	}
	return cfg
}

// genesis is a membership text naming every member, with a k-of-n quorum.
func (tn *testNet) genesis(version uint64, k int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "witnessnet membership v1\nversion %d\n", version)
	var names []string
	for _, o := range tn.members {
		fmt.Fprintf(&b, "log %s\n", o.logVkey)
	}
	for _, o := range tn.members {
		fmt.Fprintf(&b, "witness %s %s\n", o.name, o.witVkey)
		names = append(names, o.name)
	}
	fmt.Fprintf(&b, "group members %d %s\nquorum members\n", k, strings.Join(names, " "))
	return []byte(b.String())
}

func (tn *testNet) start(m *testMember) {
	tn.t.Helper()
	if m.httpLn == nil {
		// Restart on the same address.
		var err error
		if m.httpLn, err = net.Listen("tcp", m.addr); err != nil {
			tn.t.Fatal(err)
		}
	}
	n, err := New(context.Background(), tn.config(m))
	if err != nil {
		tn.t.Fatal(err)
	}
	m.node = n
}

func (tn *testNet) stop(m *testMember) {
	m.addr = m.httpLn.Addr().String()
	if err := m.node.Shutdown(context.Background()); err != nil {
		tn.t.Logf("shutdown %s: %v", m.name, err)
	}
	m.node, m.httpLn = nil, nil
	// The member may be started again on the same address: a connection the tests' client
	// pooled to the stopped server could be reused before its close is noticed, and a POST on
	// it fails with EOF (Go does not send a POST again). TestAddCheckpointOnTheNode did so once.
	http.DefaultClient.CloseIdleConnections()
}

func (tn *testNet) leader() *testMember {
	tn.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range tn.members {
			if m.node != nil && m.node.raft.IsLeader() {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	tn.t.Fatal("no leader")
	return nil
}

// follower returns the leader and a running member that is not the leader.
func (tn *testNet) follower() (leader, follower *testMember) {
	tn.t.Helper()
	leader = tn.leader()
	for _, m := range tn.members {
		if m != leader && m.node != nil {
			return leader, m
		}
	}
	tn.t.Fatal("no follower")
	return nil, nil
}

// memberCall posts body to an internal endpoint of to, signed by member from under domain.
func memberCall(t testing.TB, to *testMember, path string, from *testMember, priv ed25519.PrivateKey, domain string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, to.url()+path, bytes.NewReader(body))
	req.Header.Set("Witnessnet-Member", from.name)
	req.Header.Set("Witnessnet-Signature", base64.StdEncoding.EncodeToString(ed25519.Sign(priv, memberMessage(domain, body))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (m *testMember) url() string { return "http://" + m.httpLn.Addr().String() }

// signer makes DSSE envelopes with one ed25519 key.
type signer struct {
	priv ed25519.PrivateKey
	pem  string
	id   string
}

func newSigner(t testing.TB) *signer {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha256.Sum256(der)
	return &signer{priv: priv, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), id: hex.EncodeToString(h[:])}
}

func pae(typ string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(typ), typ, len(payload), payload)
}

func (s *signer) envelope(payload []byte) []byte {
	const typ = "application/vnd.in-toto+json"
	sig := ed25519.Sign(s.priv, pae(typ, payload))
	env, _ := json.Marshal(map[string]any{
		"payloadType": typ, "payload": base64.StdEncoding.EncodeToString(payload),
		"signatures": []map[string]string{{"keyid": s.id, "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	return env
}

func (s *signer) body(payload []byte) []byte {
	b, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(s.envelope(payload)), "public_keys": []string{s.pem}})
	return b
}

func post(t testing.TB, url string, body []byte) (int, map[string]any) {
	resp, err := http.Post(url+"/v1/entries", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func getJSON(t testing.TB, url string, v any) int {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		_ = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}
