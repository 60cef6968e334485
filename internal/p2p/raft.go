package p2p

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// RaftProtocol is the protocol ID raft's RPCs travel on.
const RaftProtocol protocol.ID = "/witnessnet/raft/1.0.0"

// streamLayer is a raft.StreamLayer over libp2p streams. A raft server address is the peer ID.
type streamLayer struct {
	h  *Host
	ln net.Listener
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// NewStreamLayer listens for raft streams on the host.
func NewStreamLayer(h *Host) (raft.StreamLayer, error) {
	ln, err := gostream.Listen(h.Host, RaftProtocol)
	if err != nil {
		return nil, err
	}
	return &streamLayer{h: h, ln: ln}, nil
}

// Accept returns the next raft stream from a member; streams from anyone else are closed.
func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		p, err := peer.Decode(c.RemoteAddr().String())
		if err != nil || !s.h.IsMember(p) {
			s.h.log.Warn("refused a raft stream from a non-member", "peer", c.RemoteAddr().String())
			c.Close()
			continue
		}
		return c, nil
	}
}

func (s *streamLayer) Close() error   { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr { return s.ln.Addr() }

// Dial opens a raft stream to the member whose peer ID is address.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	p, err := peer.Decode(string(address))
	if err != nil {
		return nil, err
	}
	if !s.h.IsMember(p) {
		return nil, errors.New("p2p: not a member: " + string(address))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return gostream.Dial(ctx, s.h.Host, p, RaftProtocol)
}

// NewRaftTransport is raft's network transport over the host: addresses are peer IDs.
func NewRaftTransport(h *Host, maxPool int, timeout time.Duration, logger hclog.Logger) (*raft.NetworkTransport, error) {
	sl, err := NewStreamLayer(h)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: sl, MaxPool: maxPool, Timeout: timeout, Logger: logger}), nil
}
