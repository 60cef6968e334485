package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/consensus"
	"github.com/witnessnet/witnessnet/internal/verify"

	"github.com/witnessnet/witnessnet/internal/ledger"
)

// Peer is one member of the network as this node knows it.
type Peer struct {
	Name     string // member name: raft server ID and witness key name
	RaftAddr string
	URL      string // base URL of its HTTP API
	// ForwardKey verifies batches the member forwards to the leader (its witness key).
	ForwardKey ed25519.PublicKey
}

// Config configures a Node. cmd/witness fills it from the config file, environment and flags.
type Config struct {
	Name     string
	Origin   string
	DataDir  string
	HTTPAddr string
	RaftAddr string // raft address the other members dial
	RaftBind string // listen address for raft, if not RaftAddr (containers)
	Peers    []Peer // every member, this node included

	LogSigner    note.Signer        // signs checkpoints; key name = Origin
	LogVerifiers []note.Verifier    // every member's log key
	WitnessSkey  string             // this member's witness key, signed-note private key form
	WitnessKey   ed25519.PrivateKey // the same key, raw: signs forwarded batches
	Witnesses    []note.Verifier    // every member's cosignature/v1 verifier, by name
	Quorum       quorum             // the policy's quorum rule over witness names
	// Genesis, if set, is the network's first membership document (text of version 1); the
	// replicated membership then replaces Quorum and Witnesses, and changes only by signed
	// new versions (POST /v1/membership).
	Genesis            []byte
	CheckpointInterval time.Duration
	// WitnessedLogs are the other logs this node witnesses through POST /add-checkpoint (C2SP
	// tlog-witness): origin to the log's signature verifiers. The network's own origin is never
	// among them: the node cosigns its own log only for the root it computed itself.
	WitnessedLogs map[string][]note.Verifier
	// Join starts a member that joins a running network: it does not bootstrap raft, and waits
	// for the leader to add it once a membership version names it.
	Join bool
	// RaftAddress finds a member's raft address in a membership document; raft's voters follow
	// the membership only when it finds one for every member. Default: the document's raft line
	// (TCP); cmd/witness uses the peer line with libp2p.
	RaftAddress func(m *verify.Membership, name string) (string, bool)
	// OnMembership, if set, is called when the node starts and whenever the replicated membership
	// changes, with its version and the members' libp2p peer IDs (name to ID; empty when the
	// document lists none): cmd/witness keeps the libp2p allowlist equal to it.
	OnMembership func(version uint64, peers map[string]string)
	// Gossip, if set, carries cosigned checkpoints and evidence among members (libp2p gossipsub).
	Gossip Gossip

	MaxRequestBytes int64         // POST /v1/entries body limit
	QueueDepth      int           // proposals waiting; beyond it submissions get 429
	MaxBatch        int           // records per raft command
	MaxBatchBytes   int           // bytes per raft command
	ProposeWorkers  int           // batches in flight (proposed on the leader, relayed elsewhere)
	ProposeTimeout  time.Duration // bound on one replication round
	PendingTTL      time.Duration // how long a threshold link waits for its signatures
	// CatchUpReport is how often a node that is behind logs its catch-up progress, and
	// CatchUpThreshold how many commands or entries behind counts as catching up.
	CatchUpReport    time.Duration
	CatchUpThreshold uint64
	Logger           *slog.Logger

	// Consensus tunes raft; ID, Dir, Transport, Peers and Logger are filled in by New.
	Consensus consensus.Config
	// RaftTransport, if set, replaces the TCP transport on RaftAddr (tests, other stream layers).
	RaftTransport raft.Transport
	// HTTPListener, if set, is served instead of listening on HTTPAddr.
	HTTPListener net.Listener
}

func (c Config) withDefaults() Config {
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 200 * time.Millisecond
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 4 << 20
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = 16384
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 2048
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 4 << 20
	}
	if c.ProposeWorkers <= 0 {
		// Two keep raft's pipeline busy; more cut the queue into smaller batches, and each
		// batch costs every replica a transaction and the network a raft round: with 4,
		// batches of about 270 entries and 5% more CPU per entry than with 2 (about 430).
		c.ProposeWorkers = 2
	}
	if c.RaftAddress == nil {
		c.RaftAddress = func(m *verify.Membership, name string) (string, bool) {
			a, ok := m.Raft[name]
			return a, ok
		}
	}
	if c.CatchUpReport <= 0 {
		c.CatchUpReport = 2 * time.Second
	}
	if c.CatchUpThreshold == 0 {
		c.CatchUpThreshold = 1000
	}
	if c.PendingTTL <= 0 {
		c.PendingTTL = 24 * time.Hour
	}
	if c.ProposeTimeout <= 0 {
		c.ProposeTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" || c.Origin == "" || c.DataDir == "" {
		errs = append(errs, errors.New("name, origin and data_dir are required"))
	}
	if (c.HTTPAddr == "" && c.HTTPListener == nil) || (c.RaftAddr == "" && c.RaftTransport == nil) {
		errs = append(errs, errors.New("http_addr and raft_addr are required"))
	}
	if c.LogSigner == nil || c.WitnessKey == nil || c.WitnessSkey == "" || c.Quorum == nil {
		errs = append(errs, errors.New("log key, witness key and policy are required"))
	}
	found := false
	for _, p := range c.Peers {
		found = found || p.Name == c.Name
	}
	if !found {
		errs = append(errs, fmt.Errorf("peers must include this node (%q)", c.Name))
	}
	return errors.Join(errs...)
}

// Node is one witness node: its ledger, its raft member, its witness, and its HTTP API.
type Node struct {
	cfg         Config
	log         *slog.Logger
	ledger      *ledger.Ledger
	raft        replicator
	witness     cosigner
	quorum      quorum
	collector   *collector
	proposer    *proposer
	relayer     *relayer
	metrics     *metrics
	client      *http.Client
	peers       map[string]Peer
	forwardKeys map[string]ed25519.PublicKey
	logVerifier note.Verifier
	// noteVerifiers knows every member's log and witness keys.
	noteVerifiers note.Verifiers // the current members' log and witness keys
	layouts       layoutCache
	keys          keyCache

	srv      *http.Server
	listener net.Listener
	stop     chan struct{}
	shutdown atomic.Bool
	// gossipOut queues messages for Config.Gossip; nil without gossip.
	gossipOut chan gossipMsg
	voters    interface {
		SetVoters(want []consensus.Peer, timeout time.Duration) (bool, error)
	}
	heard   heardCheckpoints
	wg      sync.WaitGroup
	closers []func(context.Context) error
}

// Addr is the address the HTTP API listens on.
func (n *Node) Addr() string { return n.listener.Addr().String() }

// URL is the base URL of the HTTP API.
func (n *Node) URL() string { return "http://" + n.Addr() }

// serve starts the HTTP server on the already-bound listener.
func (n *Node) serve() {
	n.srv = &http.Server{Handler: n.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.srv.Serve(n.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server", "err", err)
		}
	}()
}

// boundaryLoop runs on every node but acts only on the leader: every CheckpointInterval, if the
// log grew since the last boundary, it proposes a new boundary so all nodes cosign that size.
func (n *Node) boundaryLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if !n.raft.IsLeader() || n.ledger.Size() <= n.ledger.LastBoundary() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ProposeTimeout)
		if err := n.raft.ProposeBoundary(ctx); err != nil && n.raft.IsLeader() {
			n.log.Warn("propose checkpoint boundary", "err", err)
		}
		cancel()
	}
}

// Shutdown stops the node. Order: stop accepting HTTP requests (in-flight ones finish), stop the
// background loops, then the closers in reverse order of start: raft (which hands leadership
// over first), the ledger, the witness store.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.shutdown.CompareAndSwap(false, true) {
		return nil // already shut down (or shutting down)
	}
	var errs []error
	if n.srv != nil {
		errs = append(errs, n.srv.Shutdown(ctx))
	}
	close(n.stop)
	n.wg.Wait()
	for i := len(n.closers) - 1; i >= 0; i-- {
		errs = append(errs, n.closers[i](ctx))
	}
	return errors.Join(errs...)
}

// IsLeader reports whether this node is the raft leader now.
func (n *Node) IsLeader() bool { return n.raft.IsLeader() }

// Status is what GET /v1/status reports.
func (n *Node) Status() Status { return n.status() }
