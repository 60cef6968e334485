package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/consensus"
	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/witness"
)

// New starts a node: the ledger, its witness, its raft member, and the HTTP API. It returns once
// the HTTP API serves. Start order: witness, ledger (its sequencer cosigns through the witness), raft transport, raft, HTTP; Shutdown undoes it
// in reverse.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), quorum: cfg.Quorum, stop: make(chan struct{}),
		client: memberClient(),
		peers:  map[string]Peer{}, forwardKeys: map[string]ed25519.PublicKey{}}
	// A failed start undoes what it started. (The result is unnamed: returning nil must not
	// clear the node the cleanup and the closers refer to.)
	defer func() {
		if err != nil {
			n.closeAll(context.Background())
		}
	}()
	for _, p := range cfg.Peers {
		n.peers[p.Name] = p
		if p.ForwardKey != nil {
			n.forwardKeys[p.Name] = p.ForwardKey
		}
	}
	vs := append([]note.Verifier{}, cfg.LogVerifiers...)
	gov := &governance{static: cfg.Quorum, staticVerifiers: note.VerifierList(append(vs, cfg.Witnesses...)...)}
	n.quorum, n.noteVerifiers = gov, gov
	for _, v := range cfg.LogVerifiers {
		if v.Name() == cfg.LogSigner.Name() && v.KeyHash() == cfg.LogSigner.KeyHash() {
			n.logVerifier = v
		}
	}
	if n.logVerifier == nil {
		return nil, errors.New("this node's log key is not among the policy's log keys")
	}
	n.collector = newCollector(n)
	if err := n.collector.loadEvidence(); err != nil {
		return nil, err
	}

	w, err := openCosigner(cfg)
	if err != nil {
		return nil, err
	}
	n.witness = w
	// A member that has cosigned before but has no raft state is being rebuilt from its peers
	// (witness rebuild): it must not bootstrap a cluster of its own, it waits to be caught up.
	var cosignedBefore bool
	if ww, ok := w.(*witness.Witness); ok {
		if st, err := ww.Last(cfg.Origin); err == nil && st != nil && st.Size > 0 {
			cosignedBefore = true
		}
	}
	n.closers = append(n.closers, func(context.Context) error { return w.Close() })
	n.ledger, err = ledger.Open(ctx, ledger.Config{Path: filepath.Join(cfg.DataDir, "state.db"), OnBoundary: n.collector.onBoundary,
		Merge: mergeSignatures, Genesis: cfg.Genesis, Logger: n.log})
	if err != nil {
		return nil, err
	}
	gov.l = n.ledger
	n.closers = append(n.closers, func(context.Context) error { return n.ledger.Close() })
	n.metrics = newMetrics(n)

	n.ledger.Start()

	trans := cfg.RaftTransport
	if trans == nil {
		bind, advertise := cfg.RaftAddr, net.Addr(nil)
		if cfg.RaftBind != "" {
			bind = cfg.RaftBind
			a, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
			if err != nil {
				return nil, fmt.Errorf("raft address %s: %w", cfg.RaftAddr, err)
			}
			advertise = a
		}
		tcp, err := raft.NewTCPTransportWithLogger(bind, advertise, 4, 10*time.Second, consensus.HCLog(n.log, "raft-net"))
		if err != nil {
			return nil, fmt.Errorf("raft transport: %w", err)
		}
		trans = tcp
		n.closers = append(n.closers, func(context.Context) error { return tcp.Close() })
	}
	cc := cfg.Consensus
	cc.ID, cc.Dir, cc.Transport, cc.Logger = cfg.Name, filepath.Join(cfg.DataDir, "raft"), trans, n.log
	cc.Peers, cc.Join = nil, cfg.Join || cosignedBefore
	for _, p := range cfg.Peers {
		cc.Peers = append(cc.Peers, consensus.Peer{ID: p.Name, Address: p.RaftAddr})
	}
	rn, err := consensus.New(ctx, cc, stateMachine{n.ledger})
	if err != nil {
		return nil, err
	}
	n.raft, n.voters = raftReplicator{rn}, rn
	n.closers = append(n.closers, rn.Shutdown)

	n.listener = cfg.HTTPListener
	if n.listener == nil {
		if n.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("http listen: %w", err)
		}
	}
	n.proposer = newProposer(n)
	n.relayer = newRelayer(n)
	for _, p := range cfg.Peers {
		if p.Name == cfg.Name {
			continue
		}
		ch := make(chan struct{}, 1)
		// The sequencer is running already and may be waking the pushers.
		n.collector.mu.Lock()
		n.collector.push[p.Name] = ch
		n.collector.mu.Unlock()
		go n.collector.pushLoop(p, ch)
	}
	n.wg.Add(1)
	go n.boundaryLoop()
	if cfg.Genesis != nil {
		n.wg.Add(1)
		go n.membershipWatch(250 * time.Millisecond)
	}
	n.wg.Add(1)
	go n.catchUpLoop(cfg.CatchUpReport, cfg.CatchUpThreshold)
	if cfg.Gossip != nil {
		gctx, cancel := context.WithCancel(context.Background())
		n.closers = append(n.closers, func(context.Context) error { cancel(); return nil })
		n.gossipOut = make(chan gossipMsg, 64)
		if err := n.startGossip(gctx); err != nil {
			return nil, fmt.Errorf("gossip: %w", err)
		}
	}
	n.serve()
	return n, nil
}

func openCosigner(cfg Config) (cosigner, error) {
	return witness.Open(filepath.Join(cfg.DataDir, "witness.db"), cfg.WitnessSkey)
}

// closeAll runs the closers after a failed start.
func (n *Node) closeAll(ctx context.Context) {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](ctx); err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
			n.log.Warn("close after failed start", "err", err)
		}
	}
	n.closers = nil
}
