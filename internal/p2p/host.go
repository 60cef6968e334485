package p2p

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
)

// Member is one member as the host knows it.
type Member struct {
	Name  string
	ID    peer.ID
	Addrs []multiaddr.Multiaddr
}

// Config configures a Host.
type Config struct {
	Identity    ed25519.PrivateKey // the node identity key; the peer ID derives from it
	ListenAddrs []string           // multiaddrs, e.g. /ip4/0.0.0.0/tcp/7200
	Members     []Member           // every member, this node included
	PSK         []byte             // optional 32-byte pre-shared key: a private network
	Logger      *slog.Logger
}

// Host is a member's libp2p host.
type Host struct {
	host.Host
	gater *gater
	log   *slog.Logger
}

// New starts a host listening on cfg.ListenAddrs that connects only to members.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Identity == nil {
		return nil, errors.New("p2p: an identity key is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	priv, err := crypto.UnmarshalEd25519PrivateKey(cfg.Identity)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity: %w", err)
	}
	g := &gater{}
	g.set(cfg.Members)
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionGater(g),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
	}
	if len(cfg.PSK) > 0 {
		if len(cfg.PSK) != 32 {
			return nil, errors.New("p2p: the pre-shared key must be 32 bytes")
		}
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(cfg.PSK)))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: %w", err)
	}
	out := &Host{Host: h, gater: g, log: cfg.Logger}
	out.addAddrs(cfg.Members)
	return out, nil
}

func (h *Host) addAddrs(members []Member) {
	for _, m := range members {
		if m.ID != h.ID() && len(m.Addrs) > 0 {
			h.Peerstore().AddAddrs(m.ID, m.Addrs, peerstore.PermanentAddrTTL)
		}
	}
}

// SetMembers replaces the allowlist. Connections to peers no longer listed are closed.
func (h *Host) SetMembers(members []Member) {
	h.gater.set(members)
	h.addAddrs(members)
	for _, c := range h.Network().Conns() {
		if !h.gater.allowed(c.RemotePeer()) {
			h.log.Info("closing connection to a peer no longer a member", "peer", c.RemotePeer())
			_ = c.Close()
		}
	}
}

// IsMember reports whether a peer is listed.
func (h *Host) IsMember(p peer.ID) bool { return h.gater.allowed(p) }

// gater admits members only. It decides on authenticated identities: a dial to a non-member
// is refused before it starts, an inbound connection once the handshake proved who it is.
type gater struct {
	mu      sync.RWMutex
	members map[peer.ID]string
}

func (g *gater) set(members []Member) {
	m := make(map[peer.ID]string, len(members))
	for _, x := range members {
		m[x.ID] = x.Name
	}
	g.mu.Lock()
	g.members = m
	g.mu.Unlock()
}

func (g *gater) allowed(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.members[p]
	return ok
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                        { return g.allowed(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ multiaddr.Multiaddr) bool { return g.allowed(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool             { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}
func (g *gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return g.allowed(c.RemotePeer()), 0
}

// PeerID derives the peer ID of an Ed25519 public key.
func PeerID(pub ed25519.PublicKey) (peer.ID, error) {
	k, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", err
	}
	return peer.IDFromPublicKey(k)
}

// LoadIdentity reads a node identity key (PEM, PKCS #8 Ed25519), creating it on first use.
func LoadIdentity(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		der, _ := x509.MarshalPKCS8PrivateKey(priv)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		return priv, nil
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: want an Ed25519 key", path)
	}
	return priv, nil
}

// KeepConnected dials every member it is not connected to, now and every interval, until ctx
// ends. Raft connects the leader to each follower; gossip also wants followers connected to each
// other, so that a checkpoint or evidence reaches everyone while any path exists.
func (h *Host) KeepConnected(ctx context.Context, interval time.Duration) {
	for {
		for _, p := range h.Peerstore().PeersWithAddrs() {
			if p == h.ID() || !h.gater.allowed(p) || h.Network().Connectedness(p) == network.Connected {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, interval)
			_ = h.Connect(dctx, peer.AddrInfo{ID: p})
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
