package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// Sentinel errors.
var (
	// ErrNotLeader means this node cannot propose: it is not the leader, or it has not yet
	// confirmed its leadership with a barrier. Leader() says where to go instead.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrLeadershipLost means leadership was lost while a proposal was in flight. Its outcome is
	// indeterminate: the command may or may not be committed by the next leader.
	ErrLeadershipLost = errors.New("leadership lost while the proposal was in flight; outcome unknown")
	// ErrShutdown means the node is shutting down.
	ErrShutdown = errors.New("raft is shut down")
	// ErrStateBehindLog means the state machine's state is older than anything this member's
	// raft log and snapshots can bring it to (its state.db was put back from an old copy, say):
	// the member must be rebuilt from its peers.
	ErrStateBehindLog = errors.New("the state is behind the raft log")
	// ErrTooLarge means a command exceeds MaxCommandBytes.
	ErrTooLarge = errors.New("command too large")
)

// StateMachine is what consensus replicates into. It is applied serially.
type StateMachine interface {
	// Apply applies committed commands in log order and returns one response per command.
	// A command that cannot be applied because the replica is broken MUST panic; an invalid
	// command MUST be rejected deterministically in its response.
	Apply(cmds []Command) []any
	// AppliedIndex is the raft index of the last command whose effects are durable. The state
	// machine MUST persist it atomically with those effects.
	AppliedIndex() uint64
	// ReadState opens a consistent read of the whole state, in the form Restore takes: a
	// reader of exactly size bytes. Commands go on being applied while it is open; it may hold
	// commands after the last snapshot's index. The leader sends it to a member its log no
	// longer reaches: the state is the snapshot (see snapshotStore).
	ReadState() (rc io.ReadCloser, size int64, err error)
	// Restore replaces the state with one ReadState read (on another member).
	Restore(r io.Reader) error
}

// FileRestorer is a StateMachine that takes a snapshot the leader sent as the file it was stored
// in rather than as a stream of it, which saves a copy of the whole state.
type FileRestorer interface {
	// RestoreFile replaces the state with the one in the file at path (on the file system of
	// the raft directory), which it may move. A snapshot it refuses changes nothing.
	RestoreFile(path string) error
}

// Peer is one voting member.
type Peer struct {
	ID      string
	Address string
}

// Config configures a Node.
type Config struct {
	ID        string
	Dir       string         // raft's WAL and snapshots live here
	Transport raft.Transport // TCP in production, in-memory in tests
	Peers     []Peer         // the initial voters, this node included; used once, to bootstrap
	// Join starts a member that is not among the initial voters: it does not bootstrap, and
	// waits for the leader to add it (SetVoters) and send it the log.
	Join bool

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	// TrailingLogs is how many commands raft keeps after a snapshot. 0 sizes it from the
	// commands this member applies: TrailingLogBytes of them (see trailingFor).
	TrailingLogs     uint64
	MaxAppendEntries int
	MaxCommandBytes  int
	// WALSegmentBytes is the size of one raft-wal segment file. The WAL drops old entries a
	// whole segment at a time, so this also bounds how much log outlives a snapshot. raft-wal
	// v0.4.1 also keeps each segment's write buffer (as large as the largest batch written to
	// it) for as long as the segment exists, so smaller segments cost memory: with batches of up
	// to 256 KiB commands, 32 MiB over the 22 segments of 64 MiB a member held at a million
	// entries; a batch is now at most MaxAppendEntries × SplitBytes (512 KiB).
	WALSegmentBytes int
	Logger          *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = 500 * time.Millisecond
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.LeaderLeaseTimeout <= 0 {
		c.LeaderLeaseTimeout = 250 * time.Millisecond
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = 5 * time.Millisecond
	}
	// A snapshot copies nothing (the state is the snapshot, see snapshotStore): it only lets raft
	// drop the log before it, so members take one often. Raft looks every 10-20 s whether
	// SnapshotThreshold commands have been applied since the last one; the log then keeps
	// TrailingLogs of them, which a member that fell behind by less catches up from, and one
	// further behind is sent the leader's whole state instead. Raft counts commands, which run
	// from one submission (~1.3 KiB) to SplitBytes (32 KiB) of a batch's, so unless it is set
	// the trailing log is sized in bytes from the commands applied (sizeTrailingLog): some
	// TrailingLogBytes whatever the load. The log between snapshots is at most 16,384 commands
	// (512 MiB of batched ones) plus what arrives between two looks.
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = 10 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 16384
	}
	// Raft stores and sends up to MaxAppendEntries commands at once and hands them to the state
	// machine in batches of as many; a follower catching up queues up to 128 such batches, so
	// MaxAppendEntries times the command size (SplitBytes) bounds that memory. Fewer commands
	// per batch would slow a catch-up through many small commands (one RPC and one fsync per
	// batch: 100,000 entries took 4.3 s at 2 against 1.9-2.6 at 16). raft-wal keeps a segment's
	// write buffer at the largest batch written to it for as long as the segment exists.
	if c.MaxAppendEntries <= 0 {
		c.MaxAppendEntries = 16
	}
	if c.MaxCommandBytes <= 0 {
		c.MaxCommandBytes = 16 << 20
	}
	if c.WALSegmentBytes <= 0 {
		c.WALSegmentBytes = 256 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.ID == "" || c.Dir == "" || c.Transport == nil {
		return errors.New("consensus: ID, Dir and Transport are required")
	}
	if len(c.Peers) == 0 {
		return errors.New("consensus: Peers must list the initial voters")
	}
	return nil
}

// Node is one raft member.
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	wal   *wal.WAL
	ready atomic.Bool // leader and past its barrier
	fsm   *fsm
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	// moved is closed, and replaced, each time the leader this member knows changes; movedFor
	// is the leader it stands for.
	movedMu  sync.Mutex
	moved    chan struct{}
	movedFor raft.ServerID
	leaders  chan raft.Observation
}

// New opens (or bootstraps) a raft member. Every initial member bootstraps with the identical
// configuration, which raft accepts as one cluster.
func New(ctx context.Context, cfg Config, sm StateMachine) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	walDir := filepath.Join(cfg.Dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, err
	}
	hl := HCLog(cfg.Logger, "raft")
	const logCacheCommands = 32
	if _, err := finishRotation(walDir, cfg.WALSegmentBytes, cfg.Logger); err != nil {
		return nil, err
	}
	w, err := wal.Open(walDir, wal.WithSegmentSize(cfg.WALSegmentBytes), wal.WithLogger(hl.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("open raft wal: %w", err)
	}
	snaps, err := newSnapshotStore(cfg.Dir, 2, sm, cfg.Logger)
	if err != nil {
		w.Close()
		return nil, err
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout
	rc.LeaderLeaseTimeout, rc.CommitTimeout = cfg.LeaderLeaseTimeout, cfg.CommitTimeout
	rc.SnapshotInterval, rc.SnapshotThreshold, rc.TrailingLogs = cfg.SnapshotInterval, cfg.SnapshotThreshold, cfg.TrailingLogs
	if cfg.TrailingLogs == 0 {
		rc.TrailingLogs = minTrailingLogs
	}
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	// The state machine is durable and skips what it already holds, so restoring the last
	// snapshot at start-up would only replace newer state with older.
	rc.NoSnapshotRestoreOnStart = true

	has, err := raft.HasExistingState(w, w, snaps)
	if err != nil {
		w.Close()
		return nil, err
	}
	f := &fsm{sm: sm, snaps: snaps}
	if has {
		// Snapshots received from the leader (or copies an earlier version of the store made)
		// that the state already holds are only disk: they become held.
		if err := snaps.heldUpTo(sm.AppliedIndex()); err != nil {
			w.Close()
			return nil, err
		}
		restore, err := catchUpFromLog(w, snaps, f, sm.AppliedIndex())
		if err != nil {
			w.Close()
			return nil, err
		}
		if restore {
			// The state is older than anything the log can replay, and a snapshot the leader
			// sent is stored but was not restored (the member stopped in between): start from
			// it. The state machine checks what it restores; if that fails, raft does not start.
			cfg.Logger.Warn("the state is behind the raft log; restoring the snapshot the leader sent", "applied_index", sm.AppliedIndex())
			rc.NoSnapshotRestoreOnStart = false
			snaps.restoring.Store(true)
		}
	}
	if !has && cfg.Join {
		cfg.Logger.Info("no raft state: joining (not bootstrapping); the leader will send the log")
	}
	if !has && !cfg.Join {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
		}
		if err := raft.BootstrapCluster(rc, w, w, snaps, cfg.Transport, raft.Configuration{Servers: servers}); err != nil {
			w.Close()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	// The newest commands are also kept in memory: the leader replicates what it has just
	// written, and a follower applies what it has just stored, without reading them back from the
	// WAL and decoding them again. A command is at most the batch limit, so the cache is bounded.
	logs, err := raft.NewLogCache(logCacheCommands, w)
	if err != nil {
		w.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, wal: w, stop: make(chan struct{}), fsm: f,
		moved: make(chan struct{}), leaders: make(chan raft.Observation, 64)}
	r, err := raft.NewRaft(rc, n.fsm, logs, w, snaps, withPipelineQueues(cfg.Transport))
	snaps.restoring.Store(false)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	// Raft drops an observation rather than wait for its reader; the buffer and a reader that
	// does nothing else keep that from happening in practice, and a dropped one only delays the
	// news to the next change.
	r.RegisterObserver(raft.NewObserver(n.leaders, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	n.wg.Add(2)
	go n.watchLeadership()
	go n.watchLeaderChanges()
	if cfg.TrailingLogs == 0 {
		n.wg.Add(1)
		go n.sizeTrailingLog()
	}
	return n, nil
}

// TrailingLogBytes is about how much of the raft log a member keeps after a snapshot when
// Config.TrailingLogs is 0: a member that fell behind by less catches up from the log, one
// further behind is sent the leader's whole state.
const TrailingLogBytes = 1 << 30

// The trailing log is kept between these many commands: at least what it always was (a GiB of
// batched commands), at most a million (a GiB of single submissions).
const (
	minTrailingLogs = 32768
	maxTrailingLogs = 1 << 20
)

// trailingFor is how many commands of meanBytes each make TrailingLogBytes.
func trailingFor(meanBytes uint64) uint64 {
	if meanBytes == 0 {
		return minTrailingLogs
	}
	return min(max(TrailingLogBytes/meanBytes, minTrailingLogs), maxTrailingLogs)
}

// sizeTrailingLog sizes raft's trailing log from the commands applied: once per snapshot
// interval, from the mean size of the commands applied since the last look (if there were at
// least 256), it sets TrailingLogs to trailingFor that mean when that differs from the current
// one by more than a quarter. Raft uses it at its next snapshot.
func (n *Node) sizeTrailingLog() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.SnapshotInterval)
	defer t.Stop()
	lastBytes, lastCmds := n.fsm.appliedBytes.Load(), n.fsm.appliedCommands.Load()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		b, c := n.fsm.appliedBytes.Load(), n.fsm.appliedCommands.Load()
		if c-lastCmds < 256 {
			continue
		}
		mean := (b - lastBytes) / (c - lastCmds)
		lastBytes, lastCmds = b, c
		rc := n.raft.ReloadableConfig()
		want := trailingFor(mean)
		if d := max(want, rc.TrailingLogs) - min(want, rc.TrailingLogs); d*4 <= rc.TrailingLogs {
			continue
		}
		n.log.Info("raft trailing log resized", "commands", want, "mean_command_bytes", mean, "was", rc.TrailingLogs)
		rc.TrailingLogs = want
		if err := n.raft.ReloadConfig(rc); err != nil {
			n.log.Warn("resizing the raft trailing log", "err", err)
		}
	}
}

// LeaderChanged returns the leader this member knows now ("" for none) and a channel that is
// closed when that changes (to another member, or to none). A call made to that leader can be
// abandoned when it closes: the member called may be gone, and a dial to a vanished address does
// not fail fast. Raft's observations only prompt a look at the leader: one that reports the
// leader already known (still queued when it was read here, or a change and back) closes
// nothing.
func (n *Node) LeaderChanged() (leader string, changed <-chan struct{}) {
	n.movedMu.Lock()
	defer n.movedMu.Unlock()
	n.syncMovedLocked()
	return string(n.movedFor), n.moved
}

// syncMovedLocked closes moved if the leader raft knows now is not the one it stands for.
func (n *Node) syncMovedLocked() {
	if _, id := n.raft.LeaderWithID(); id != n.movedFor {
		close(n.moved)
		n.moved, n.movedFor = make(chan struct{}), id
	}
}

func (n *Node) watchLeaderChanges() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case <-n.leaders:
			n.movedMu.Lock()
			n.syncMovedLocked()
			n.movedMu.Unlock()
		}
	}
}

// catchUpFromLog brings a state machine that is behind the newest local snapshot up to it before
// raft starts. Raft starts at the snapshot's index and replays only the log after it (the state
// is durable, so restoring the snapshot at every start would only replace newer state with
// older); a state at an older index (put back from a copy, or a snapshot taken just after
// entries the state machine never sees, such as a leader's no-op) would otherwise miss what lies
// between. Those entries are committed (the snapshot covers them): it applies them from the local
// log. If the log does not hold them all, the state can only come from a snapshot: one the
// leader sent and the member stored but did not restore (killed in between) is restored (it
// reports restore); a held snapshot is the state itself, so the member must be rebuilt from its
// peers (an error that says so).
func catchUpFromLog(logs raft.LogStore, snaps *snapshotStore, f *fsm, applied uint64) (restore bool, err error) {
	list, err := snaps.list()
	if err != nil || len(list) == 0 {
		return false, err
	}
	newest := list[0]
	snapIndex := newest.Index
	if applied >= snapIndex || (newest.Held && applied >= newest.StateApplied) {
		return false, nil
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return false, err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return false, err
	}
	if first == 0 || first > applied+1 || last < snapIndex {
		if newest.Held {
			return false, fmt.Errorf("%w: the state's applied index is %d, the raft log starts at %d and the newest snapshot (%s, held by the state when it was taken at applied index %d) is not a copy; rebuild this member from its peers (witness rebuild)",
				ErrStateBehindLog, applied, first, newest.ID, newest.StateApplied)
		}
		return true, nil
	}
	const chunk = 256
	for from := applied + 1; from <= snapIndex; from += chunk {
		var batch []*raft.Log
		for i := from; i <= min(snapIndex, from+chunk-1); i++ {
			l := new(raft.Log)
			if err := logs.GetLog(i, l); err != nil {
				return false, fmt.Errorf("replay raft log entry %d below the snapshot: %w", i, err)
			}
			batch = append(batch, l)
		}
		for _, r := range f.ApplyBatch(batch) {
			if err, ok := r.(error); ok && err != nil {
				return false, fmt.Errorf("replay below the snapshot: %w", err)
			}
		}
	}
	return false, nil
}

// removeUnfinishedSnapshots removes the snapshots a member was writing, or receiving from the
// leader, when it stopped: raft's file snapshot store leaves them (directories named *.tmp)
// and never reads or removes them, and each is as large as the state.
func removeUnfinishedSnapshots(dir string, log *slog.Logger) error {
	tmps, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if err != nil {
		return err
	}
	for _, p := range tmps {
		log.Info("removing an unfinished raft snapshot", "path", p)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove unfinished snapshot: %w", err)
		}
	}
	return nil
}

// watchLeadership marks the node ready to propose only after a barrier: a new leader MUST NOT
// act before every command of earlier terms is applied to its own state.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-n.raft.LeaderCh():
			n.ready.Store(false)
			if !leader {
				continue
			}
			// Raft answers a barrier it has taken in, but one still in its apply channel when
			// raft shuts down (leadership lost at that moment, say) is never answered: waiting
			// for it without also watching stop held Shutdown for good (a node test's cleanup,
			// once). The goroutine left waiting then is the only thing that outlives Shutdown.
			barrier := n.raft.Barrier(30 * time.Second)
			errc := make(chan error, 1)
			go func() { errc <- barrier.Error() }()
			var err error
			select {
			case err = <-errc:
			case <-n.stop:
				return
			}
			if err != nil {
				n.log.Warn("barrier after election", "err", err)
				continue
			}
			if n.raft.State() == raft.Leader {
				n.ready.Store(true)
				n.log.Info("leading", "term", n.raft.CurrentTerm())
			}
		}
	}
}

// Voters returns raft's current voters.
func (n *Node) Voters() ([]Peer, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Peer
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, Peer{ID: string(s.ID), Address: string(s.Address)})
		}
	}
	return out, nil
}

// SetVoters makes raft's voters exactly want, on the leader: it adds the missing ones first,
// then removes the others, the leader itself last. Each change is one raft configuration change,
// committed before the next. The address of a voter raft already has is left as it is: a wrong
// address for a running member would cut it off, and enough of them would stall the network
// beyond repair by the same means. It returns whether anything changed.
func (n *Node) SetVoters(want []Peer, timeout time.Duration) (bool, error) {
	if !n.IsLeader() {
		return false, ErrNotLeader
	}
	have, err := n.Voters()
	if err != nil {
		return false, err
	}
	cur := map[string]string{}
	for _, p := range have {
		cur[p.ID] = p.Address
	}
	wanted := map[string]bool{}
	changed := false
	for _, p := range want {
		wanted[p.ID] = true
		if _, ok := cur[p.ID]; ok {
			continue
		}
		n.log.Info("adding raft voter", "id", p.ID, "address", p.Address)
		if err := n.raft.AddVoter(raft.ServerID(p.ID), raft.ServerAddress(p.Address), 0, timeout).Error(); err != nil {
			return changed, fmt.Errorf("add voter %s: %w", p.ID, err)
		}
		changed = true
	}
	self := n.cfg.ID
	removeSelf := false
	for _, p := range have {
		if wanted[p.ID] {
			continue
		}
		if p.ID == self {
			removeSelf = true
			continue
		}
		n.log.Info("removing raft voter", "id", p.ID)
		if err := n.raft.RemoveServer(raft.ServerID(p.ID), 0, timeout).Error(); err != nil {
			return changed, fmt.Errorf("remove voter %s: %w", p.ID, err)
		}
		changed = true
	}
	if removeSelf {
		n.log.Info("removing raft voter", "id", self, "note", "this node, the leader: it steps down")
		if err := n.raft.RemoveServer(raft.ServerID(self), 0, timeout).Error(); err != nil {
			return changed, fmt.Errorf("remove voter %s: %w", self, err)
		}
		changed = true
	}
	return changed, nil
}

// IsLeader reports whether this node leads and may propose.
func (n *Node) IsLeader() bool { return n.ready.Load() && n.raft.State() == raft.Leader }

// Leader returns the ID and address of the current leader, empty if unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Stats is a snapshot of raft's counters.
type Stats struct {
	State        string
	Term         uint64
	LastIndex    uint64
	CommitIndex  uint64
	AppliedIndex uint64
}

// Stats returns raft's state and counters. AppliedIndex is what the state machine has applied:
// while it applies a batch, the index before that batch (raft's own counter runs ahead).
func (n *Node) Stats() Stats {
	s := n.raft.Stats()
	u := func(k string) uint64 { v, _ := strconv.ParseUint(s[k], 10, 64); return v }
	st := Stats{State: n.raft.State().String(), Term: u("term"), LastIndex: u("last_log_index"),
		CommitIndex: u("commit_index"), AppliedIndex: u("applied_index")}
	if from := n.fsm.applying.Load(); from > 0 {
		st.AppliedIndex = min(st.AppliedIndex, from-1)
	}
	return st
}

// Propose replicates one command and returns the state machine's response to it. It MUST NOT
// return a response before the command is committed by a quorum and applied on this node. On
// ErrLeadershipLost or a context error the outcome is unknown.
func (n *Node) Propose(ctx context.Context, kind uint8, records [][]byte) (any, error) {
	out, err := n.ProposeAll(ctx, kind, [][][]byte{records})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ProposeAll replicates one command per element of commands, in that order, and returns the
// state machine's response to each. The commands are handed to raft back to back, so the leader
// writes and sends them together and a follower stores them with one sync; they are committed
// in order but not as one: on an error some may have been applied, and as with Propose the
// outcome is then unknown. It returns once every command is applied on this node.
func (n *Node) ProposeAll(ctx context.Context, kind uint8, commands [][][]byte) ([]any, error) {
	if !n.IsLeader() {
		return nil, ErrNotLeader
	}
	now := time.Now()
	data := make([][]byte, len(commands))
	for i, records := range commands {
		data[i] = EncodeCommand(kind, now, records)
		if len(data[i]) > n.cfg.MaxCommandBytes {
			return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data[i]))
		}
	}
	timeout := time.Duration(0)
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	fs := make([]raft.ApplyFuture, len(data))
	for i, d := range data {
		fs[i] = n.raft.Apply(d, timeout)
	}
	done := make(chan error, 1)
	go func() {
		for _, f := range fs {
			if err := f.Error(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrLeadershipLost, ctx.Err())
	case err := <-done:
		switch {
		case err == nil:
			out := make([]any, len(fs))
			for i, f := range fs {
				out[i] = f.Response()
			}
			return out, nil
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, ErrNotLeader
		case errors.Is(err, raft.ErrLeadershipLost):
			return nil, ErrLeadershipLost
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, ErrShutdown
		default:
			return nil, err
		}
	}
}

// WaitApplied blocks until this node has applied index or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.raft.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Shutdown stops the member. Order: a leader first hands leadership to another voter (so a
// SIGTERM'd leader costs the cluster no election timeout), then raft stops, then the WAL closes.
func (n *Node) Shutdown(ctx context.Context) error {
	var err error
	n.once.Do(func() {
		if n.raft.State() == raft.Leader && len(n.raft.GetConfiguration().Configuration().Servers) > 1 {
			f := n.raft.LeadershipTransfer()
			done := make(chan error, 1)
			go func() { done <- f.Error() }()
			select {
			case terr := <-done:
				if terr != nil {
					n.log.Warn("leadership transfer", "err", terr)
				}
			case <-ctx.Done():
			}
		}
		close(n.stop)
		err = n.raft.Shutdown().Error()
		n.wg.Wait()
		if cerr := n.wal.Close(); cerr != nil && err == nil {
			err = cerr
		}
	})
	return err
}

// Raft exposes the underlying raft instance to tests and the status page.
func (n *Node) Raft() *raft.Raft { return n.raft }
