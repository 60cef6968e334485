package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/witnessnet/witnessnet/internal/consensus"
	"github.com/witnessnet/witnessnet/internal/node"
	"github.com/witnessnet/witnessnet/internal/p2p"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// p2pConfig turns on libp2p between members: raft then travels over libp2p streams among the
// peer IDs the configuration lists, instead of plain TCP.
type p2pConfig struct {
	Listen string `mapstructure:"listen" yaml:"listen,omitempty"` // multiaddr, e.g. /ip4/0.0.0.0/tcp/7200
	Key    string `mapstructure:"key" yaml:"key,omitempty"`       // node identity (PEM PKCS #8 Ed25519), created on first use
	PSK    string `mapstructure:"psk" yaml:"psk,omitempty"`       // optional file: 64 hex digits, a private network key
}

// startP2P starts the libp2p host and raft's transport over it when the configuration asks for
// libp2p, and rewrites the raft addresses to peer IDs. The returned function closes both after
// the node has shut down.
func (fc *fileConfig) startP2P(ctx context.Context, cfg *node.Config, log *slog.Logger) (func(), error) {
	if fc.P2P.Listen == "" {
		return func() {}, nil
	}
	key, err := p2p.LoadIdentity(fc.P2P.Key)
	if err != nil {
		return nil, fmt.Errorf("p2p key: %w", err)
	}
	var psk []byte
	if fc.P2P.PSK != "" {
		b, err := os.ReadFile(fc.P2P.PSK)
		if err != nil {
			return nil, fmt.Errorf("p2p psk: %w", err)
		}
		if psk, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(psk) != 32 {
			return nil, fmt.Errorf("p2p psk %s: want 64 hex digits", fc.P2P.PSK)
		}
	}
	var members []p2p.Member
	ids := map[string]string{}
	for _, p := range fc.Peers {
		id, err := peer.Decode(p.PeerID)
		if err != nil {
			return nil, fmt.Errorf("peer %s: peer_id: %w", p.Name, err)
		}
		m := p2p.Member{Name: p.Name, ID: id}
		for _, a := range p.P2PAddrs {
			ma, err := multiaddr.NewMultiaddr(a)
			if err != nil {
				return nil, fmt.Errorf("peer %s: p2p address %q: %w", p.Name, a, err)
			}
			m.Addrs = append(m.Addrs, ma)
		}
		members = append(members, m)
		ids[p.Name] = id.String()
	}
	h, err := p2p.New(ctx, p2p.Config{Identity: key, ListenAddrs: []string{fc.P2P.Listen}, Members: members, PSK: psk, Logger: log})
	if err != nil {
		return nil, err
	}
	if ids[cfg.Name] != h.ID().String() {
		h.Close()
		return nil, fmt.Errorf("p2p key %s has peer ID %s; the configuration lists %s for %s", fc.P2P.Key, h.ID(), ids[cfg.Name], cfg.Name)
	}
	trans, err := p2p.NewRaftTransport(h, 4, 10*time.Second, consensus.HCLog(log, "raft-net"))
	if err != nil {
		h.Close()
		return nil, err
	}
	g, err := p2p.NewGossip(ctx, h)
	if err != nil {
		trans.Close()
		h.Close()
		return nil, err
	}
	cfg.Gossip = p2p.Bytes{G: g}
	// Raft addresses are peer IDs: raft's voters follow the membership's peer lines.
	cfg.RaftAddress = func(m *verify.Membership, name string) (string, bool) {
		id, ok := m.Peers[name]
		return id, ok
	}
	// The replicated membership decides who may connect: once it lists peer IDs, the allowlist
	// is exactly those (addresses from the configuration where known; a new member dials in).
	cfg.OnMembership = func(version uint64, peers map[string]string) {
		if len(peers) == 0 {
			return
		}
		var allowed []p2p.Member
		for name, id := range peers {
			pid, err := peer.Decode(id)
			if err != nil {
				log.Error("membership lists a bad peer ID", "version", version, "member", name, "err", err)
				continue
			}
			m := p2p.Member{Name: name, ID: pid}
			for _, c := range members {
				if c.ID == pid {
					m.Addrs = c.Addrs
				}
			}
			allowed = append(allowed, m)
		}
		h.SetMembers(allowed)
		log.Info("p2p allowlist follows the membership", "version", version, "members", len(allowed))
	}
	go h.KeepConnected(ctx, 2*time.Second)
	cfg.RaftTransport, cfg.RaftAddr = trans, h.ID().String()
	for i := range cfg.Peers {
		cfg.Peers[i].RaftAddr = ids[cfg.Peers[i].Name]
	}
	log.Info("raft and gossip over libp2p", "peer_id", h.ID(), "listen", h.Addrs())
	return func() { trans.Close(); h.Close() }, nil
}
