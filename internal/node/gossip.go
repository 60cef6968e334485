package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Gossip carries cosigned checkpoints and evidence among members (libp2p gossipsub; see
// internal/p2p). It widens the set of vantage points: a member that missed a push, or that was
// shown a fork, hears what the others saw. Nothing depends on delivery; every gossiped note goes
// through the same checks as one pushed over HTTP, and evidence is never taken on trust: the
// notes inside it are checked again here, and the node records only what it finds itself.
type Gossip interface {
	Publish(ctx context.Context, topic string, data []byte) error
	// Subscribe calls fn for every message on topic that the validator accepted, from members other
	// than this node, until ctx ends.
	Subscribe(ctx context.Context, topic string, fn func(data []byte)) error
	// Validate registers the topic's validator: false rejects the message and penalizes its sender.
	Validate(topic string, fn func(data []byte) bool) error
}

// Gossip topics: one per log origin for its cosigned checkpoints, and one for evidence of
// inconsistent checkpoints. The topic names are the node's; internal/p2p carries any topic.
const topicEvidence = "/witnessnet/evidence"

func checkpointTopic(origin string) string { return "/witnessnet/checkpoints/" + origin }

// gossipMsg is one message waiting to be published.
type gossipMsg struct {
	topic string
	data  []byte
}

// startGossip registers the validators and subscriptions and starts the publisher.
func (n *Node) startGossip(ctx context.Context) error {
	g := n.cfg.Gossip
	cpTopic := checkpointTopic(n.cfg.Origin)
	// A checkpoint is valid gossip if members' keys verify it and it carries a member's log
	// signature; whether it agrees with this node's tree is decided after delivery, so that a
	// fork still travels and raises the alarm everywhere.
	if err := g.Validate(cpTopic, func(data []byte) bool { return n.memberCheckpoint(data) }); err != nil {
		return err
	}
	if err := g.Validate(topicEvidence, func(data []byte) bool {
		var e Evidence
		if json.Unmarshal(data, &e) != nil || e.Theirs == "" {
			return false
		}
		for _, s := range []string{e.Theirs, e.Ours} {
			if s != "" && !n.memberCheckpoint([]byte(s)) {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	if err := g.Subscribe(ctx, cpTopic, func(data []byte) {
		n.metrics.gossipReceived.WithLabelValues("checkpoint").Inc()
		n.heard.add(data)
		if err := n.collector.addPeerNote(data); err != nil {
			n.log.Debug("gossiped checkpoint", "err", err)
		}
	}); err != nil {
		return err
	}
	if err := g.Subscribe(ctx, topicEvidence, func(data []byte) {
		n.metrics.gossipReceived.WithLabelValues("evidence").Inc()
		var e Evidence
		if json.Unmarshal(data, &e) != nil {
			return
		}
		// Check the notes again as if a member had pushed them: an equivocation or a disagreement
		// with this node's tree becomes this node's own evidence.
		for _, s := range []string{e.Ours, e.Theirs} {
			if s != "" {
				if err := n.collector.addPeerNote([]byte(s)); err != nil {
					n.log.Debug("gossiped evidence", "err", err)
				}
			}
		}
	}); err != nil {
		return err
	}
	n.wg.Add(1)
	go n.gossipLoop(ctx)
	return nil
}

// memberCheckpoint reports whether data is a checkpoint note of this network with a member's
// log signature, every signature on it from a known key verifying.
func (n *Node) memberCheckpoint(data []byte) bool {
	parsed, err := note.Open(data, n.noteVerifiers)
	if err != nil {
		return false
	}
	if _, err := checkpointSize(parsed.Text, n.cfg.Origin); err != nil {
		return false
	}
	for _, s := range parsed.Sigs {
		if s.Name == n.cfg.Origin {
			return true
		}
	}
	return false
}

// gossip queues a message for publishing; when the queue is full the message is dropped
// (gossip is best effort; the next checkpoint supersedes this one).
func (n *Node) gossip(topic string, data []byte) {
	if n.gossipOut == nil {
		return
	}
	select {
	case n.gossipOut <- gossipMsg{topic, data}:
	default:
	}
}

func (n *Node) gossipLoop(ctx context.Context) {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case <-ctx.Done():
			return
		case m := <-n.gossipOut:
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := n.cfg.Gossip.Publish(pctx, m.topic, m.data); err != nil {
				n.log.Debug("gossip publish", "topic", m.topic, "err", err)
			}
			cancel()
		}
	}
}

// gossipEvidence publishes a new evidence record.
func (n *Node) gossipEvidence(e Evidence) {
	if b, err := json.Marshal(e); err == nil {
		n.gossip(topicEvidence, b)
	}
}

// heardCheckpoints keeps the last distinct checkpoints other members gossiped, for auditors
// (GET /v1/gossip): they compare them with what each node serves, so one node's view is checked
// against every member's.
type heardCheckpoints struct {
	mu    sync.Mutex
	notes [][]byte
}

const heardWindow = 32

func (h *heardCheckpoints) add(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range h.notes {
		if bytes.Equal(o, data) {
			return
		}
	}
	if len(h.notes) == heardWindow {
		h.notes = h.notes[1:]
	}
	h.notes = append(h.notes, bytes.Clone(data))
}

func (h *heardCheckpoints) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.notes))
	for i, n := range h.notes {
		out[i] = string(n)
	}
	return out
}

// handleGossip is GET /v1/gossip: the checkpoints heard from other members by gossip, oldest
// first (empty without gossip).
func (n *Node) handleGossip(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"checkpoints": n.heard.list()})
}
