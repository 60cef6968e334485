package p2p

import (
	"context"
	"fmt"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Verdict is a validator's decision on a gossiped message.
type Verdict int

const (
	// Accept delivers and forwards the message.
	Accept Verdict = iota
	// Reject drops the message and penalizes the peer that sent it (bad signature, garbage).
	Reject
	// Ignore drops the message without penalty.
	Ignore
)

// Gossip is gossipsub among members: messages are signed by their publisher's node identity and
// verified strictly, and each topic has a validator supplied by its user.
type Gossip struct {
	h  *Host
	ps *pubsub.PubSub

	mu     sync.Mutex
	topics map[string]*pubsub.Topic
}

// NewGossip starts gossipsub on the host.
func NewGossip(ctx context.Context, h *Host) (*Gossip, error) {
	ps, err := pubsub.NewGossipSub(ctx, h.Host,
		pubsub.WithMessageSigning(true),
		pubsub.WithStrictSignatureVerification(true),
		pubsub.WithPeerFilter(func(p peer.ID, _ string) bool { return h.IsMember(p) }),
	)
	if err != nil {
		return nil, fmt.Errorf("p2p: gossipsub: %w", err)
	}
	return &Gossip{h: h, ps: ps, topics: map[string]*pubsub.Topic{}}, nil
}

func (g *Gossip) topic(name string) (*pubsub.Topic, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.topics[name]; ok {
		return t, nil
	}
	t, err := g.ps.Join(name)
	if err != nil {
		return nil, err
	}
	g.topics[name] = t
	return t, nil
}

// Validate registers the validator of a topic; it sees every message before delivery or
// forwarding, with the member that published it.
func (g *Gossip) Validate(topic string, fn func(from peer.ID, data []byte) Verdict) error {
	return g.ps.RegisterTopicValidator(topic, func(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if !g.h.IsMember(m.GetFrom()) {
			return pubsub.ValidationReject
		}
		switch fn(m.GetFrom(), m.Data) {
		case Accept:
			return pubsub.ValidationAccept
		case Ignore:
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationReject
	})
}

// Publish gossips data on a topic.
func (g *Gossip) Publish(ctx context.Context, topic string, data []byte) error {
	t, err := g.topic(topic)
	if err != nil {
		return err
	}
	return t.Publish(ctx, data)
}

// Subscribe calls fn for every validated message on a topic until ctx ends.
func (g *Gossip) Subscribe(ctx context.Context, topic string, fn func(from peer.ID, data []byte)) error {
	t, err := g.topic(topic)
	if err != nil {
		return err
	}
	sub, err := t.Subscribe()
	if err != nil {
		return err
	}
	go func() {
		defer sub.Cancel()
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			if m.ReceivedFrom == g.h.ID() {
				continue
			}
			fn(m.GetFrom(), m.Data)
		}
	}()
	return nil
}

// Bytes is Gossip seen as plain byte messages, the form internal/node takes (node.Gossip). The
// publisher's identity has already been checked against the member list when a callback runs.
type Bytes struct{ G *Gossip }

// Publish gossips data on topic.
func (b Bytes) Publish(ctx context.Context, topic string, data []byte) error {
	return b.G.Publish(ctx, topic, data)
}

// Subscribe calls fn for every validated message from another member.
func (b Bytes) Subscribe(ctx context.Context, topic string, fn func(data []byte)) error {
	return b.G.Subscribe(ctx, topic, func(_ peer.ID, data []byte) { fn(data) })
}

// Validate registers a validator: true accepts, false rejects and penalizes the sender.
func (b Bytes) Validate(topic string, fn func(data []byte) bool) error {
	return b.G.Validate(topic, func(_ peer.ID, data []byte) Verdict {
		if fn(data) {
			return Accept
		}
		return Reject
	})
}
