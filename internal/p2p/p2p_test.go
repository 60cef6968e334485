package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type testPeer struct {
	key  ed25519.PrivateKey
	id   peer.ID
	host *Host
}

func newKeys(t *testing.T, n int) []*testPeer {
	var out []*testPeer
	for range n {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		id, err := PeerID(k.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &testPeer{key: k, id: id})
	}
	return out
}

// startHosts starts a host for each peer that lists the members; then tells every host where
// the others listen.
func startHosts(t *testing.T, peers []*testPeer, members []*testPeer, psk []byte) {
	var ms []Member
	for i, m := range members {
		ms = append(ms, Member{Name: fmt.Sprint("m", i), ID: m.id})
	}
	for _, p := range peers {
		h, err := New(context.Background(), Config{Identity: p.key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Members: ms, PSK: psk, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		p.host = h
		t.Cleanup(func() { h.Close() })
	}
	for _, p := range peers {
		for _, o := range peers {
			if o != p {
				p.host.Peerstore().AddAddrs(o.id, o.host.Addrs(), time.Hour)
			}
		}
	}
}

type countFSM struct {
	mu   sync.Mutex
	logs [][]byte
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, l.Data)
	return nil
}
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("no snapshots") }
func (f *countFSM) Restore(io.ReadCloser) error         { return nil }
func (f *countFSM) n() int                              { f.mu.Lock(); defer f.mu.Unlock(); return len(f.logs) }

// startRaft runs a raft cluster over the peers' libp2p transports.
func startRaft(t *testing.T, peers []*testPeer) ([]*raft.Raft, []*countFSM) {
	var servers []raft.Server
	for _, p := range peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.id.String()), Address: raft.ServerAddress(p.id.String())})
	}
	var rs []*raft.Raft
	var fsms []*countFSM
	for _, p := range peers {
		trans, err := NewRaftTransport(p.host, 3, 2*time.Second, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		c := raft.DefaultConfig()
		c.LocalID = raft.ServerID(p.id.String())
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
		c.Logger = hclog.NewNullLogger()
		store := raft.NewInmemStore()
		fsm := &countFSM{}
		r, err := raft.NewRaft(c, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Shutdown().Error(); trans.Close() })
		rs, fsms = append(rs, r), append(fsms, fsm)
	}
	return rs, fsms
}

func leaderOf(t *testing.T, rs []*raft.Raft) *raft.Raft {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, r := range rs {
			if r.State() == raft.Leader {
				return r
			}
		}
	}
	t.Fatal("no leader")
	return nil
}

func waitApplied(t *testing.T, fsms []*countFSM, n int) {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok := true
		for _, f := range fsms {
			ok = ok && f.n() >= n
		}
		if ok {
			return
		}
	}
	t.Fatalf("not every member applied %d commands", n)
}

func TestRaftOverLibp2p(t *testing.T) {
	peers := newKeys(t, 3)
	startHosts(t, peers, peers, nil)
	rs, fsms := startRaft(t, peers)
	lead := leaderOf(t, rs)
	for i := range 20 {
		if err := lead.Apply([]byte(fmt.Sprint("cmd", i)), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	waitApplied(t, fsms, 20)
}

// A peer outside the membership cannot open a stream to a member, even to a protocol the member
// serves: the member's gater refuses its connection once the handshake authenticated it.
func TestNonMemberCannotOpenStream(t *testing.T) {
	peers := newKeys(t, 2)
	outsider := newKeys(t, 1)[0]
	startHosts(t, peers, peers, nil)
	// The outsider believes everyone (itself included) is a member; the members do not.
	startHosts(t, []*testPeer{outsider}, append(peers, outsider), nil)
	var served atomic.Int64
	const proto protocol.ID = "/witnessnet/test/1.0.0"
	for _, p := range peers {
		p.host.SetStreamHandler(proto, func(s network.Stream) { served.Add(1); s.Close() })
		p.host.SetStreamHandler(RaftProtocol, func(s network.Stream) { served.Add(1); s.Close() })
	}
	outsider.host.Peerstore().AddAddrs(peers[0].id, peers[0].host.Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, pr := range []protocol.ID{proto, RaftProtocol} {
		s, err := outsider.host.NewStream(ctx, peers[0].id, pr)
		if err == nil {
			// A stream may look open locally before the remote side resets it; it must not carry data.
			_, werr := s.Write([]byte("hello"))
			buf := make([]byte, 1)
			_, rerr := s.Read(buf)
			if werr == nil && rerr == nil {
				t.Fatalf("outsider opened a working %s stream", pr)
			}
		}
	}
	// A member does connect and open streams.
	if s, err := peers[1].host.NewStream(ctx, peers[0].id, proto); err != nil {
		t.Fatalf("member stream: %v", err)
	} else {
		s.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); served.Load() < 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := served.Load(); n != 1 {
		t.Fatalf("members served %d streams, want exactly the member's one", n)
	}
	if len(peers[0].host.Network().ConnsToPeer(outsider.id)) != 0 {
		t.Fatal("a member kept a connection to the outsider")
	}
}

func TestRemovedMemberIsDisconnected(t *testing.T) {
	peers := newKeys(t, 3)
	startHosts(t, peers, peers, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const proto protocol.ID = "/witnessnet/test/1.0.0"
	peers[0].host.SetStreamHandler(proto, func(s network.Stream) { s.Close() })
	if err := peers[2].host.Connect(ctx, peer.AddrInfo{ID: peers[0].id, Addrs: peers[0].host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	peers[0].host.SetMembers([]Member{{Name: "a", ID: peers[0].id}, {Name: "b", ID: peers[1].id}})
	if len(peers[0].host.Network().ConnsToPeer(peers[2].id)) != 0 {
		t.Fatal("connection to the removed member stayed open")
	}
	if s, err := peers[2].host.NewStream(ctx, peers[0].id, proto); err == nil {
		if _, err := s.Read(make([]byte, 1)); err == nil {
			t.Fatal("the removed member still opens streams")
		}
	}
}

// A member that sends garbage or a frame claiming gigabytes on the raft protocol does not crash
// the node, and the cluster keeps replicating.
func TestGarbageRaftFramesAreRefused(t *testing.T) {
	peers := newKeys(t, 3)
	startHosts(t, peers, peers, nil)
	rs, fsms := startRaft(t, peers)
	lead := leaderOf(t, rs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	huge := []byte{0x01, 0xc6} // rpcAppendEntries, then a msgpack bin32 header...
	huge = binary.BigEndian.AppendUint32(huge, 0xfffffff0)
	for _, frame := range [][]byte{
		bytes.Repeat([]byte{0xff}, 4096),
		huge,
		append([]byte{0x01, 0xdf}, binary.BigEndian.AppendUint32(nil, 0x7fffffff)...), // a map of 2^31 entries
	} {
		for _, target := range peers {
			s, err := peers[0].host.NewStream(ctx, target.id, RaftProtocol)
			if err != nil {
				continue
			}
			s.Write(frame)
			s.Close()
		}
	}
	for i := range 5 {
		if err := lead.Apply([]byte(fmt.Sprint("after", i)), 5*time.Second).Error(); err != nil {
			t.Fatalf("the cluster stopped replicating: %v", err)
		}
	}
	waitApplied(t, fsms, 5)
}

func TestGossipValidators(t *testing.T) {
	peers := newKeys(t, 3)
	startHosts(t, peers, peers, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	topic := "/witnessnet/checkpoints/example.org/log"
	var gs []*Gossip
	got := make(chan string, 16)
	for _, p := range peers {
		g, err := NewGossip(ctx, p.host)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Validate(topic, func(_ peer.ID, data []byte) Verdict {
			if bytes.HasPrefix(data, []byte("bad")) {
				return Reject
			}
			return Accept
		}); err != nil {
			t.Fatal(err)
		}
		if err := g.Subscribe(ctx, topic, func(_ peer.ID, data []byte) { got <- string(data) }); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	for _, p := range peers[1:] {
		if err := peers[0].host.Connect(ctx, peer.AddrInfo{ID: p.id, Addrs: p.host.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	// Publish until the mesh forms and the good message arrives at both other members.
	seen := map[string]int{}
	deadline := time.After(20 * time.Second)
	for seen["good"] < 2 {
		_ = gs[0].Publish(ctx, topic, []byte("bad checkpoint"))
		_ = gs[0].Publish(ctx, topic, []byte("good"))
		select {
		case m := <-got:
			seen[m]++
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("gossip did not deliver: %v", seen)
		}
	}
	if seen["bad checkpoint"] != 0 {
		t.Fatal("a message the validator rejected was delivered")
	}
}

func TestPSKMismatchPreventsConnection(t *testing.T) {
	a, b := newKeys(t, 1), newKeys(t, 1)
	all := append(append([]*testPeer{}, a...), b...)
	startHosts(t, a, all, bytes.Repeat([]byte{1}, 32))
	startHosts(t, b, all, bytes.Repeat([]byte{2}, 32))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := b[0].host.Connect(ctx, peer.AddrInfo{ID: a[0].id, Addrs: a[0].host.Addrs()}); err == nil {
		t.Fatal("connected across different pre-shared keys")
	}
}
