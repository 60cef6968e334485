package localnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/node"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// Config describes an in-process network.
type Config struct {
	Nodes  int
	Dir    string // where each node keeps its data; required
	Origin string // default "witnessnet.local/log"
	// Names, if set, names the members (default node1, node2, ...).
	Names  []string
	Logger *slog.Logger // default: discard
	// Tune, if set, adjusts each node's configuration before it starts.
	Tune func(*node.Config)
}

// Network is a running in-process network.
type Network struct {
	cfg     Config
	Members []Member
	Policy  []byte
	Genesis []byte

	mu    sync.Mutex
	nodes []*node.Node
	lns   []net.Listener
}

// Start generates keys and starts every node. The HTTP and raft addresses are loopback ports
// chosen by the kernel.
func Start(ctx context.Context, cfg Config) (*Network, error) {
	if cfg.Nodes < 1 {
		return nil, errors.New("localnet: at least one node")
	}
	if cfg.Dir == "" {
		return nil, errors.New("localnet: Dir is required")
	}
	if cfg.Origin == "" {
		cfg.Origin = "witnessnet.local/log"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	nw := &Network{cfg: cfg, nodes: make([]*node.Node, cfg.Nodes), lns: make([]net.Listener, cfg.Nodes)}
	// The raft ports are reserved until every member has one, so that no two members get the same.
	var reserved []net.Listener
	defer func() {
		for _, l := range reserved {
			l.Close()
		}
	}()
	for i := range cfg.Nodes {
		name := fmt.Sprintf("node%d", i+1)
		if i < len(cfg.Names) {
			name = cfg.Names[i]
		}
		m, err := NewMember(name, cfg.Origin)
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		nw.lns[i] = ln
		m.HTTPAddr, m.URL = ln.Addr().String(), "http://"+ln.Addr().String()
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		reserved = append(reserved, rl)
		m.RaftAddr = rl.Addr().String()
		nw.Members = append(nw.Members, m)
	}
	for _, l := range reserved {
		l.Close()
	}
	reserved = nil
	nw.Policy = PolicyText(cfg.Origin, nw.Members)
	nw.Genesis = MembershipText(nw.Policy)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(nw.PolicyPath(), nw.Policy, 0o644); err != nil {
		return nil, err
	}
	for i := range nw.Members {
		if err := nw.Start(ctx, i); err != nil {
			nw.Close()
			return nil, err
		}
	}
	return nw, nil
}

// PolicyPath is where the network's policy file is written.
func (nw *Network) PolicyPath() string { return filepath.Join(nw.cfg.Dir, "policy.txt") }

// URLs are the members' base URLs.
func (nw *Network) URLs() []string {
	out := make([]string, len(nw.Members))
	for i, m := range nw.Members {
		out[i] = m.URL
	}
	return out
}

// Node returns member i's node, nil while it is stopped.
func (nw *Network) Node(i int) *node.Node {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.nodes[i]
}

// config is member i's node configuration.
func (nw *Network) config(i int) (node.Config, error) {
	m := nw.Members[i]
	policy, err := verify.ParsePolicy(nw.Policy)
	if err != nil {
		return node.Config{}, err
	}
	signer, err := note.NewSigner(m.LogSkey)
	if err != nil {
		return node.Config{}, err
	}
	priv, err := node.WitnessPrivateKey(m.WitSkey)
	if err != nil {
		return node.Config{}, err
	}
	cfg := node.Config{
		Name: m.Name, Origin: nw.cfg.Origin, DataDir: nw.DataDir(i), RaftAddr: m.RaftAddr,
		LogSigner: signer, LogVerifiers: policy.LogVerifiers(), WitnessSkey: m.WitSkey, WitnessKey: priv,
		Witnesses: policy.WitnessVerifiers(), Quorum: policy, Genesis: nw.Genesis, Logger: nw.cfg.Logger.With("member", m.Name),
	}
	for _, o := range nw.Members {
		pub, err := node.WitnessPublicKey(o.WitVkey)
		if err != nil {
			return node.Config{}, err
		}
		cfg.Peers = append(cfg.Peers, node.Peer{Name: o.Name, RaftAddr: o.RaftAddr, URL: o.URL, ForwardKey: ed25519.PublicKey(pub)})
	}
	if nw.cfg.Tune != nil {
		nw.cfg.Tune(&cfg)
	}
	return cfg, nil
}

// Start starts member i (again, after Stop) on the same addresses and data.
func (nw *Network) Start(ctx context.Context, i int) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.nodes[i] != nil {
		return nil
	}
	cfg, err := nw.config(i)
	if err != nil {
		return err
	}
	if nw.lns[i] == nil {
		if nw.lns[i], err = net.Listen("tcp", nw.Members[i].HTTPAddr); err != nil {
			return err
		}
	}
	cfg.HTTPListener = nw.lns[i]
	// Every goroutine the member starts inherits its label, so a CPU profile of a network in one
	// process splits by member (go tool pprof -tagfocus member=NAME).
	var n *node.Node
	pprof.Do(ctx, pprof.Labels("member", nw.Members[i].Name), func(ctx context.Context) {
		n, err = node.New(ctx, cfg)
	})
	if err != nil {
		nw.lns[i].Close()
		nw.lns[i] = nil
		return fmt.Errorf("start %s: %w", nw.Members[i].Name, err)
	}
	nw.nodes[i] = n
	return nil
}

// Stop shuts member i down gracefully (leadership transfer first when it leads).
func (nw *Network) Stop(ctx context.Context, i int) error {
	nw.mu.Lock()
	n := nw.nodes[i]
	nw.nodes[i], nw.lns[i] = nil, nil
	nw.mu.Unlock()
	if n == nil {
		return nil
	}
	return n.Shutdown(ctx)
}

// Leader waits for a raft leader and returns its member index.
func (nw *Network) Leader(ctx context.Context) (int, error) {
	for {
		for i := range nw.Members {
			if n := nw.Node(i); n != nil && n.IsLeader() {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("no raft leader: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops every node.
func (nw *Network) Close() error {
	var errs []error
	for i := range nw.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, nw.Stop(ctx, i))
		cancel()
	}
	for _, ln := range nw.lns {
		if ln != nil {
			ln.Close()
		}
	}
	return errors.Join(errs...)
}

// DataDir is member i's data directory.
func (nw *Network) DataDir(i int) string { return filepath.Join(nw.cfg.Dir, nw.Members[i].Name) }
