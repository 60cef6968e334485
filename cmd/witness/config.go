package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/node"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// readKey reads a one-line key file.
func readKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// maxProposeWorkers bounds propose_workers: each is a batch in flight, and a batch holds up to
// 4 MiB of submissions.
const maxProposeWorkers = 64

// nodeConfig turns the file configuration into the node's typed configuration: keys read and
// checked, the policy parsed, and this node's keys found in it.
func (fc *fileConfig) nodeConfig(log *slog.Logger) (node.Config, error) {
	var cfg node.Config
	if fc.ProposeWorkers < 0 || fc.ProposeWorkers > maxProposeWorkers {
		return cfg, fmt.Errorf("propose_workers %d: want 1 to %d, or 0 for the default", fc.ProposeWorkers, maxProposeWorkers)
	}
	logSkey, err := readKey(fc.LogKey)
	if err != nil {
		return cfg, fmt.Errorf("log key: %w", err)
	}
	logSigner, err := note.NewSigner(logSkey)
	if err != nil {
		return cfg, fmt.Errorf("log key %s: %w", fc.LogKey, err)
	}
	if logSigner.Name() != fc.Origin {
		return cfg, fmt.Errorf("log key %s is named %q, want the origin %q", fc.LogKey, logSigner.Name(), fc.Origin)
	}
	witSkey, err := readKey(fc.WitnessKey)
	if err != nil {
		return cfg, fmt.Errorf("witness key: %w", err)
	}
	witPriv, err := node.WitnessPrivateKey(witSkey)
	if err != nil {
		return cfg, fmt.Errorf("witness key %s: %w", fc.WitnessKey, err)
	}
	pb, err := os.ReadFile(fc.Policy)
	if err != nil {
		return cfg, fmt.Errorf("policy: %w", err)
	}
	policy, err := verify.ParsePolicy(pb)
	if err != nil {
		return cfg, fmt.Errorf("policy %s: %w", fc.Policy, err)
	}
	self, ok := policy.Witness(fc.Name)
	if !ok {
		return cfg, fmt.Errorf("policy %s has no witness named %q", fc.Policy, fc.Name)
	}
	if pub, err := node.WitnessPublicKey(self.VKey); err != nil || !pub.Equal(witPriv.Public()) {
		return cfg, fmt.Errorf("policy %s lists another key for witness %q than %s", fc.Policy, fc.Name, fc.WitnessKey)
	}
	cfg = node.Config{
		Name: fc.Name, Origin: fc.Origin, DataDir: fc.DataDir, HTTPAddr: fc.HTTPAddr, RaftAddr: fc.RaftAddr, RaftBind: fc.RaftBind,
		LogSigner: logSigner, LogVerifiers: policy.LogVerifiers(), WitnessSkey: witSkey, WitnessKey: witPriv,
		Witnesses: policy.WitnessVerifiers(), Quorum: policy, CheckpointInterval: fc.CheckpointInterval,
		MaxRequestBytes: fc.MaxRequestBytes, QueueDepth: fc.QueueDepth, ProposeWorkers: fc.ProposeWorkers, Logger: log,
	}
	if fc.Membership != "" {
		genesis, err := os.ReadFile(fc.Membership)
		if err != nil {
			return cfg, fmt.Errorf("membership: %w", err)
		}
		m, err := verify.ParseMembershipText(genesis)
		if err != nil {
			return cfg, fmt.Errorf("membership %s: %w", fc.Membership, err)
		}
		if m.Version != 1 {
			return cfg, fmt.Errorf("membership %s: the configured document must be the genesis (version 1); later versions are replicated", fc.Membership)
		}
		if _, ok := m.Policy.Witness(fc.Name); !ok && !fc.Join {
			return cfg, fmt.Errorf("membership %s has no witness named %q", fc.Membership, fc.Name)
		}
		cfg.Genesis = genesis
	}
	if fc.Join && fc.Membership == "" {
		return cfg, fmt.Errorf("join: a joining member needs the network's genesis membership (membership)")
	}
	cfg.Join = fc.Join
	for _, wl := range fc.WitnessedLogs {
		if wl.Origin == "" || len(wl.Keys) == 0 {
			return cfg, fmt.Errorf("witnessed_logs: every log needs an origin and at least one key")
		}
		if wl.Origin == fc.Origin {
			return cfg, fmt.Errorf("witnessed_logs: %q is this network's own origin; the node cosigns its own log only for the root it computes", wl.Origin)
		}
		if cfg.WitnessedLogs == nil {
			cfg.WitnessedLogs = map[string][]note.Verifier{}
		}
		if _, dup := cfg.WitnessedLogs[wl.Origin]; dup {
			return cfg, fmt.Errorf("witnessed_logs: %q is listed twice", wl.Origin)
		}
		for _, k := range wl.Keys {
			v, err := note.NewVerifier(k)
			if err != nil {
				return cfg, fmt.Errorf("witnessed_logs: %q: key %q: %w", wl.Origin, k, err)
			}
			cfg.WitnessedLogs[wl.Origin] = append(cfg.WitnessedLogs[wl.Origin], v)
		}
	}
	cfg.Consensus.SnapshotThreshold = fc.SnapshotThreshold
	cfg.Consensus.TrailingLogs = fc.TrailingLogs
	cfg.Consensus.SnapshotInterval = fc.SnapshotInterval
	cfg.Consensus.WALSegmentBytes = fc.WALSegmentBytes
	cfg.Consensus.ElectionTimeout = fc.ElectionTimeout
	cfg.Consensus.HeartbeatTimeout = fc.ElectionTimeout
	for _, p := range fc.Peers {
		w, ok := policy.Witness(p.Name)
		if !ok {
			return cfg, fmt.Errorf("peer %q is not a witness in the policy", p.Name)
		}
		pub, err := node.WitnessPublicKey(w.VKey)
		if err != nil {
			return cfg, fmt.Errorf("policy witness %q: %w", p.Name, err)
		}
		cfg.Peers = append(cfg.Peers, node.Peer{Name: p.Name, RaftAddr: p.RaftAddr, URL: strings.TrimRight(p.URL, "/"), ForwardKey: pub})
	}
	return cfg, nil
}
