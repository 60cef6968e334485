package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/p2p"
)

// DefaultOrigin is the log origin testnet writes unless told otherwise.
const DefaultOrigin = "witnessnet.local/log"

// testnetSpec describes a local network to write.
type testnetSpec struct {
	Nodes    int
	Dir      string
	BasePort int
	Origin   string
	// Hosts, if set, names each node's host (docker compose service names); otherwise 127.0.0.1
	// with one port per node.
	Hosts []string
	Force bool
	// Transport is how raft travels between members: tcp, or libp2p (peer IDs, a gater that
	// admits only members; node i listens on base-port+200+i-1).
	Transport string
}

func testnetCmd(args []string) int {
	fs := pflag.NewFlagSet("witness testnet", pflag.ContinueOnError)
	var s testnetSpec
	fs.IntVar(&s.Nodes, "nodes", 3, "number of member nodes")
	fs.StringVar(&s.Dir, "dir", "./testnet", "directory to write the network into")
	fs.IntVar(&s.BasePort, "base-port", 7100, "node i serves HTTP on base-port+i-1 and raft on base-port+100+i-1")
	fs.StringVar(&s.Origin, "origin", DefaultOrigin, "log origin (checkpoint origin line and log key name)")
	fs.StringSliceVar(&s.Hosts, "hosts", nil, "host names of the nodes (e.g. node1,node2,...); each then uses base-port for HTTP and base-port+100 for raft")
	fs.BoolVar(&s.Force, "force", false, "overwrite an existing network in DIR")
	fs.StringVar(&s.Transport, "transport", "tcp", "raft between members: tcp, or libp2p")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := writeTestnet(s); err != nil {
		fmt.Fprintf(os.Stderr, "witness testnet: %v\n", err)
		return 1
	}
	fmt.Printf("wrote a %d-node network to %s\n", s.Nodes, s.Dir)
	fmt.Printf("start each node with: witness run --config %s\n", filepath.Join(s.Dir, "node<i>", "witness.yaml"))
	fmt.Printf("clients verify checkpoints with: %s\n", filepath.Join(s.Dir, "policy.txt"))
	return 0
}

func writeTestnet(s testnetSpec) error {
	if s.Nodes < 1 || s.Nodes > 64 {
		return fmt.Errorf("--nodes %d: want 1..64", s.Nodes)
	}
	if len(s.Hosts) > 0 && len(s.Hosts) != s.Nodes {
		return fmt.Errorf("--hosts names %d hosts for %d nodes", len(s.Hosts), s.Nodes)
	}
	if s.Transport != "tcp" && s.Transport != "libp2p" {
		return fmt.Errorf("--transport %q: want tcp or libp2p", s.Transport)
	}
	if s.BasePort < 1024 || s.BasePort+200+s.Nodes > 65535 {
		return fmt.Errorf("--base-port %d out of range", s.BasePort)
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 && !s.Force {
		return fmt.Errorf("%s is not empty (use --force to overwrite)", dir)
	}
	members := make([]localnet.Member, s.Nodes)
	for i := range members {
		m, err := localnet.NewMember(fmt.Sprintf("node%d", i+1), s.Origin)
		if err != nil {
			return err
		}
		host, port := "127.0.0.1", s.BasePort+i
		if len(s.Hosts) > 0 {
			host, port = s.Hosts[i], s.BasePort
		}
		m.HTTPAddr = fmt.Sprintf("%s:%d", host, port)
		m.RaftAddr = fmt.Sprintf("%s:%d", host, port+100)
		m.URL = "http://" + m.HTTPAddr
		if len(s.Hosts) > 0 {
			m.HTTPAddr = fmt.Sprintf("0.0.0.0:%d", port)
		}
		members[i] = m
	}
	peers, err := p2pIdentities(dir, s, members)
	if err != nil {
		return err
	}
	for _, m := range members {
		if err := writeMember(dir, s, m, members, peers); err != nil {
			return err
		}
	}
	policy := localnet.PolicyText(s.Origin, members)
	if err := os.WriteFile(filepath.Join(dir, "policy.txt"), policy, 0o644); err != nil {
		return err
	}
	membership := localnet.MembershipText(policy)
	for _, m := range members {
		if p, ok := peers[m.Name]; ok {
			membership = fmt.Appendf(membership, "peer %s %s\n", m.Name, p.PeerID)
		} else {
			membership = fmt.Appendf(membership, "raft %s %s\n", m.Name, m.RaftAddr)
		}
	}
	return os.WriteFile(filepath.Join(dir, "membership.txt"), membership, 0o644)
}

// p2pIdentities makes each member's libp2p identity key when the network uses libp2p, and
// returns each member's peer ID and listen address as the others see it.
func p2pIdentities(dir string, s testnetSpec, members []localnet.Member) (map[string]peerConfig, error) {
	out := map[string]peerConfig{}
	if s.Transport != "libp2p" {
		return out, nil
	}
	for i, m := range members {
		if err := os.MkdirAll(filepath.Join(dir, m.Name), 0o700); err != nil {
			return nil, err
		}
		key, err := p2p.LoadIdentity(filepath.Join(dir, m.Name, "p2p.key"))
		if err != nil {
			return nil, err
		}
		id, err := p2p.PeerID(key.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.BasePort+200+i)
		if len(s.Hosts) > 0 {
			addr = fmt.Sprintf("/dns4/%s/tcp/%d", s.Hosts[i], s.BasePort+200)
		}
		out[m.Name] = peerConfig{PeerID: id.String(), P2PAddrs: []string{addr}}
	}
	return out, nil
}

func writeMember(dir string, s testnetSpec, m localnet.Member, all []localnet.Member, peers map[string]peerConfig) error {
	nd := filepath.Join(dir, m.Name)
	if err := os.MkdirAll(nd, 0o700); err != nil {
		return err
	}
	for file, key := range map[string]string{"log.key": m.LogSkey, "witness.key": m.WitSkey} {
		if err := os.WriteFile(filepath.Join(nd, file), []byte(key+"\n"), 0o600); err != nil {
			return err
		}
	}
	cfg := fileConfig{
		Name: m.Name, Origin: s.Origin, DataDir: filepath.Join(nd, "data"), HTTPAddr: m.HTTPAddr, RaftAddr: m.RaftAddr,
		LogKey: filepath.Join(nd, "log.key"), WitnessKey: filepath.Join(nd, "witness.key"), Policy: filepath.Join(dir, "policy.txt"),
		Membership: filepath.Join(dir, "membership.txt"),
	}
	if len(s.Hosts) > 0 {
		// Inside containers the network directory is mounted at /testnet.
		cfg.DataDir, cfg.LogKey, cfg.WitnessKey, cfg.Policy = "/data", "/testnet/"+m.Name+"/log.key", "/testnet/"+m.Name+"/witness.key", "/testnet/policy.txt"
		cfg.Membership = "/testnet/membership.txt"
		cfg.RaftBind = fmt.Sprintf("0.0.0.0:%d", s.BasePort+100)
	}
	for i, o := range all {
		pc := peerConfig{Name: o.Name, RaftAddr: o.RaftAddr, URL: o.URL}
		if p, ok := peers[o.Name]; ok {
			pc.PeerID, pc.P2PAddrs = p.PeerID, p.P2PAddrs
			if o.Name == m.Name {
				port := s.BasePort + 200 + i
				if len(s.Hosts) > 0 {
					port = s.BasePort + 200
				}
				cfg.P2P = p2pConfig{Listen: fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port), Key: filepath.Join(nd, "p2p.key")}
				if len(s.Hosts) > 0 {
					cfg.P2P.Key = "/testnet/" + m.Name + "/p2p.key"
				}
			}
		}
		cfg.Peers = append(cfg.Peers, pc)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	header := "# witnessnet node configuration, written by `witness testnet`.\n# WITNESS_* environment variables and flags override these values.\n"
	return os.WriteFile(filepath.Join(nd, "witness.yaml"), append([]byte(header), b...), 0o600)
}
