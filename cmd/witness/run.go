package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/witnessnet/witnessnet/internal/node"
	"github.com/witnessnet/witnessnet/internal/procs"
)

// fileConfig is witness.yaml. Flags override WITNESS_* environment variables, which override
// the file.
type fileConfig struct {
	Name       string `mapstructure:"name" yaml:"name,omitempty"`
	Origin     string `mapstructure:"origin" yaml:"origin,omitempty"`
	DataDir    string `mapstructure:"data_dir" yaml:"data_dir,omitempty"`
	HTTPAddr   string `mapstructure:"http_addr" yaml:"http_addr,omitempty"`
	RaftAddr   string `mapstructure:"raft_addr" yaml:"raft_addr,omitempty"`
	RaftBind   string `mapstructure:"raft_bind" yaml:"raft_bind,omitempty"` // listen address if not raft_addr
	LogKey     string `mapstructure:"log_key" yaml:"log_key,omitempty"`
	WitnessKey string `mapstructure:"witness_key" yaml:"witness_key,omitempty"`
	Policy     string `mapstructure:"policy" yaml:"policy,omitempty"`
	Membership string `mapstructure:"membership" yaml:"membership,omitempty"` // genesis membership document
	// Join: this member joins a running network (no raft bootstrap); the leader adds it once a
	// membership version names it.
	Join               bool          `mapstructure:"join" yaml:"join,omitempty"`
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval" yaml:"checkpoint_interval,omitempty"`
	LogLevel           string        `mapstructure:"log_level" yaml:"log_level,omitempty"`
	MaxRequestBytes    int64         `mapstructure:"max_request_bytes" yaml:"max_request_bytes,omitempty"`
	QueueDepth         int           `mapstructure:"queue_depth" yaml:"queue_depth,omitempty"`
	ProposeWorkers     int           `mapstructure:"propose_workers" yaml:"propose_workers,omitempty"`
	SnapshotThreshold  uint64        `mapstructure:"snapshot_threshold" yaml:"snapshot_threshold,omitempty"`
	TrailingLogs       uint64        `mapstructure:"trailing_logs" yaml:"trailing_logs,omitempty"`
	ElectionTimeout    time.Duration `mapstructure:"election_timeout" yaml:"election_timeout,omitempty"`
	SnapshotInterval   time.Duration `mapstructure:"snapshot_interval" yaml:"snapshot_interval,omitempty"`
	WALSegmentBytes    int           `mapstructure:"wal_segment_bytes" yaml:"wal_segment_bytes,omitempty"`
	// DebugAddr, if set, serves Go's runtime profiles (/debug/pprof/) there.
	DebugAddr string       `mapstructure:"debug_addr" yaml:"debug_addr,omitempty"`
	Peers     []peerConfig `mapstructure:"peers" yaml:"peers,omitempty"`
	P2P       p2pConfig    `mapstructure:"p2p" yaml:"p2p,omitempty"`
	// Other logs this node witnesses through POST /add-checkpoint (C2SP tlog-witness).
	WitnessedLogs []witnessedLog `mapstructure:"witnessed_logs" yaml:"witnessed_logs,omitempty"`
}

// witnessedLog is a log this node witnesses: its origin and the note verifier keys of its
// checkpoint signers.
type witnessedLog struct {
	Origin string   `mapstructure:"origin" yaml:"origin"`
	Keys   []string `mapstructure:"keys" yaml:"keys"`
}

type peerConfig struct {
	Name     string `mapstructure:"name" yaml:"name,omitempty"`
	RaftAddr string `mapstructure:"raft_addr" yaml:"raft_addr,omitempty"`
	URL      string `mapstructure:"url" yaml:"url,omitempty"`
	// With p2p: the member's libp2p peer ID and where it listens.
	PeerID   string   `mapstructure:"peer_id" yaml:"peer_id,omitempty"`
	P2PAddrs []string `mapstructure:"p2p_addrs" yaml:"p2p_addrs,omitempty"`
}

// loadConfig reads the configuration: file, then WITNESS_* environment, then flags.
func loadConfig(args []string) (*fileConfig, error) {
	fs := pflag.NewFlagSet("witness run", pflag.ContinueOnError)
	fs.String("config", "", "configuration file (witness.yaml)")
	fs.String("name", "", "member name")
	fs.String("data-dir", "", "directory for raft, state.db and witness.db")
	fs.String("http-addr", "", "HTTP listen address")
	fs.String("raft-addr", "", "raft listen address")
	fs.String("log-level", "", "debug, info, warn or error")
	fs.Duration("checkpoint-interval", 0, "how often the leader marks a checkpoint boundary")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	v := viper.New()
	v.SetDefault("log_level", "info")
	v.SetEnvPrefix("WITNESS")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	for _, k := range []string{"name", "origin", "data_dir", "http_addr", "raft_addr", "log_key", "witness_key", "policy", "raft_bind", "checkpoint_interval", "join", "log_level", "max_request_bytes", "queue_depth", "propose_workers", "snapshot_threshold", "trailing_logs", "election_timeout", "snapshot_interval", "wal_segment_bytes", "debug_addr"} {
		_ = v.BindEnv(k)
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" {
			_ = v.BindPFlag(strings.ReplaceAll(f.Name, "-", "_"), f)
		}
	})
	path, _ := fs.GetString("config")
	if path == "" {
		path = os.Getenv("WITNESS_CONFIG")
	}
	if path == "" {
		return nil, errors.New("--config is required")
	}
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var fc fileConfig
	if err := v.Unmarshal(&fc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &fc, nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func runCmd(args []string) int {
	fc, err := loadConfig(args)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "witness run: %v\n", err)
		return 2
	}
	log, err := newLogger(fc.LogLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "witness run: %v\n", err)
		return 2
	}
	cfg, err := fc.nodeConfig(log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "witness run: %v\n", err)
		return 2
	}
	procs.Set()
	memLimit := procs.SetMemoryLimit()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	closeP2P, err := fc.startP2P(ctx, &cfg, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	defer closeP2P()
	closeDebug, err := startDebug(fc.DebugAddr, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	defer closeDebug()
	n, err := node.New(ctx, cfg)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	log.Info("serving", "name", cfg.Name, "http", n.URL(), "raft", cfg.RaftAddr, "gomaxprocs", runtime.GOMAXPROCS(0), "gomemlimit", memLimitText(memLimit))
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// memLimitText says what soft memory limit the runtime was given at start.
func memLimitText(set int64) string {
	if set > 0 {
		return fmt.Sprintf("%d MiB (%.0f%% of the cgroup's limit)", set>>20, procs.MemoryShare*100)
	}
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return v + " (GOMEMLIMIT)"
	}
	return "none"
}
