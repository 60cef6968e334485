package consensus

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/witnessnet/witnessnet/internal/durable"
)

// snapshotStore is raft's snapshot store. The state machine's own state is durable (it records
// its applied index with every command it applies), so a snapshot this member takes copies
// nothing: it records that the state holds everything up to its index (a held snapshot, a
// meta.json alone) and raft drops the log before it. The state is copied only when the leader
// sends it to a member its log no longer reaches: Open streams a consistent read of the current
// state, which may hold commands after the snapshot's index (the receiver skips those when raft
// replays them). A snapshot received from the leader is a file (state.bin) until the state
// machine has restored it; then it is held too.
//
// The layout is raft's file snapshot store's (<dir>/snapshots/<term>-<index>-<ms>/meta.json and
// state.bin, with the state's CRC-64 in meta.json), so the copies of the state that store wrote
// (earlier versions used it) read here as received ones; a held snapshot's meta.json says so and
// has no state.bin.
type snapshotStore struct {
	dir    string
	retain int
	sm     StateMachine
	log    *slog.Logger

	// mu orders the store's own changes (new snapshots, reaping, holding); reads of a
	// snapshot's state.bin go on without it.
	mu sync.Mutex
	// restoring is set while raft starts from a local snapshot because the state is behind
	// it: a held snapshot is the state itself, and restoring the state from itself would let
	// raft skip what the state lacks, so Open refuses held snapshots then.
	restoring atomic.Bool
	// received is the snapshot the leader sent last, stored and not yet restored: raft
	// restores it right after storing it (installSnapshot, one at a time). Guarded by mu.
	received string
}

// storedMeta is meta.json: raft's file snapshot store's record, and whether the state holds it.
type storedMeta struct {
	raft.SnapshotMeta
	CRC []byte
	// Held: the state machine's durable state holds every command up to Index; there is no
	// state.bin. StateApplied is the state's applied index when that was recorded: a state at
	// or past it holds the snapshot (for one taken here it is at most Index, only entries that
	// are not commands lying between).
	Held         bool   `json:",omitempty"`
	StateApplied uint64 `json:",omitempty"`
}

const (
	snapshotMetaFile  = "meta.json"
	snapshotStateFile = "state.bin"
	snapshotTmpSuffix = ".tmp"
)

var crcTable = crc64.MakeTable(crc64.ECMA)

func newSnapshotStore(base string, retain int, sm StateMachine, log *slog.Logger) (*snapshotStore, error) {
	dir := filepath.Join(base, "snapshots")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	if err := removeUnfinishedSnapshots(dir, log); err != nil {
		return nil, err
	}
	return &snapshotStore{dir: dir, retain: retain, sm: sm, log: log}, nil
}

var _ raft.SnapshotStore = (*snapshotStore)(nil)

// Create starts a snapshot: one this member takes (the state machine's snapshot marks it held
// and writes nothing) or one the leader sends (written to state.bin).
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("unsupported snapshot version %d", version)
	}
	id := fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixMilli())
	tmp := filepath.Join(s.dir, id+snapshotTmpSuffix)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	return &snapshotSink{store: s, dir: tmp, crc: crc64.New(crcTable), meta: storedMeta{SnapshotMeta: raft.SnapshotMeta{
		Version: version, ID: id, Index: index, Term: term,
		Configuration: configuration, ConfigurationIndex: configurationIndex,
	}}}, nil
}

// List returns the snapshots, newest first (by term, index and ID, as raft's store does).
func (s *snapshotStore) List() ([]*raft.SnapshotMeta, error) {
	metas, err := s.list()
	if err != nil {
		return nil, err
	}
	out := make([]*raft.SnapshotMeta, len(metas))
	for i, m := range metas {
		out[i] = &m.SnapshotMeta
	}
	return out, nil
}

func (s *snapshotStore) list() ([]*storedMeta, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []*storedMeta
	for _, e := range ents {
		if !e.IsDir() || strings.HasSuffix(e.Name(), snapshotTmpSuffix) {
			continue
		}
		m, err := s.readMeta(e.Name())
		if err != nil {
			s.log.Warn("skipping a raft snapshot whose metadata does not read", "id", e.Name(), "err", err)
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *storedMeta) int {
		return cmp.Or(cmp.Compare(b.Term, a.Term), cmp.Compare(b.Index, a.Index), strings.Compare(b.ID, a.ID))
	})
	return out, nil
}

func (s *snapshotStore) readMeta(id string) (*storedMeta, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, id, snapshotMetaFile))
	if err != nil {
		return nil, err
	}
	m := new(storedMeta)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, err
	}
	if m.ID != id {
		return nil, fmt.Errorf("meta.json names snapshot %q", m.ID)
	}
	return m, nil
}

// Open reads a snapshot: a held one streams a consistent read of the state as it is now (its
// size is that read's), a received one its state.bin, checked against its size and CRC as it is
// read (the reader fails at the end rather than report a damaged file read whole).
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	m, err := s.readMeta(id)
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	meta := m.SnapshotMeta
	if m.Held {
		if s.restoring.Load() {
			return nil, nil, fmt.Errorf("open snapshot %s: it is held by the state, which is behind it; it cannot restore the state", id)
		}
		rc, size, err := s.sm.ReadState()
		if err != nil {
			return nil, nil, fmt.Errorf("open snapshot %s: read the state: %w", id, err)
		}
		meta.Size = size
		return &meta, rc, nil
	}
	f, err := os.Open(filepath.Join(s.dir, id, snapshotStateFile))
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	return &meta, &checkedReader{f: f, r: bufio.NewReaderSize(f, 1<<20), crc: crc64.New(crcTable), want: m.CRC, left: m.Size, id: id}, nil
}

// checkedReader reads a received snapshot's state.bin and fails, instead of ending, when the
// file's length or CRC is not what was received.
type checkedReader struct {
	f    *os.File
	r    io.Reader
	crc  hash.Hash64
	want []byte
	left int64
	id   string
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	c.left -= int64(n)
	if c.left < 0 {
		return n, fmt.Errorf("snapshot %s: state.bin is longer than the snapshot received", c.id)
	}
	if err == io.EOF {
		if c.left != 0 {
			return n, fmt.Errorf("snapshot %s: state.bin ends %d bytes short", c.id, c.left)
		}
		if !bytes.Equal(c.crc.Sum(nil), c.want) {
			return n, fmt.Errorf("snapshot %s: state.bin does not match the CRC recorded when it was received", c.id)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.f.Close() }

// heldUpTo records every received snapshot whose index the state's applied index has reached as
// held, and removes its state.bin: the state holds it now. Called at start.
func (s *snapshotStore) heldUpTo(applied uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdLocked(applied, "")
}

// restored is heldUpTo after the state machine restored a snapshot: the one the leader just
// sent is held too, even when only entries that are not commands (a new leader's no-op, say)
// lie between the restored state's applied index and the snapshot's.
func (s *snapshotStore) restored(applied uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.received
	s.received = ""
	return s.holdLocked(applied, id)
}

// receivedFile is the state.bin of the snapshot the leader sent last, stored and not yet
// restored ("" for none).
func (s *snapshotStore) receivedFile() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.received == "" {
		return ""
	}
	return filepath.Join(s.dir, s.received, snapshotStateFile)
}

// discardReceived removes the snapshot the leader sent last, which the state machine refused.
func (s *snapshotStore) discardReceived() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.received == "" {
		return
	}
	s.log.Warn("removing a raft snapshot the state refused", "id", s.received)
	if err := os.RemoveAll(filepath.Join(s.dir, s.received)); err != nil {
		s.log.Warn("removing a refused raft snapshot", "id", s.received, "err", err)
	}
	s.received = ""
}

func (s *snapshotStore) holdLocked(applied uint64, restored string) error {
	metas, err := s.list()
	if err != nil {
		return err
	}
	for _, m := range metas {
		if m.Held || (m.Index > applied && m.ID != restored) {
			continue
		}
		m.Held, m.StateApplied, m.Size, m.CRC = true, applied, 0, nil
		dir := filepath.Join(s.dir, m.ID)
		if err := writeMeta(dir, m); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(dir, snapshotStateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		s.log.Info("raft snapshot now held by the state", "id", m.ID, "applied_index", applied)
	}
	return nil
}

// reap removes all but the newest retain snapshots.
func (s *snapshotStore) reap() error {
	metas, err := s.list()
	if err != nil {
		return err
	}
	for i := s.retain; i < len(metas); i++ {
		if err := os.RemoveAll(filepath.Join(s.dir, metas[i].ID)); err != nil {
			return fmt.Errorf("remove old snapshot: %w", err)
		}
	}
	return nil
}

// writeMeta replaces dir's meta.json, synced, through a rename.
func writeMeta(dir string, m *storedMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return durable.ReplaceFile(filepath.Join(dir, snapshotMetaFile), b)
}

// snapshotSink writes one snapshot into its temporary directory; Close finishes it (syncs it
// and renames the directory into place), Cancel removes it.
type snapshotSink struct {
	store *snapshotStore
	dir   string
	meta  storedMeta
	f     *os.File
	w     *bufio.Writer
	crc   hash.Hash64
	done  bool
}

func (k *snapshotSink) ID() string { return k.meta.ID }

// hold marks the snapshot as held by the state, whose applied index is applied.
func (k *snapshotSink) hold(applied uint64) { k.meta.Held, k.meta.StateApplied = true, applied }

func (k *snapshotSink) Write(p []byte) (int, error) {
	if k.meta.Held {
		return 0, errors.New("a held snapshot has no state to write")
	}
	if k.f == nil {
		f, err := os.OpenFile(filepath.Join(k.dir, snapshotStateFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, err
		}
		k.f, k.w = f, bufio.NewWriterSize(f, 1<<20)
	}
	n, err := k.w.Write(p)
	k.crc.Write(p[:n])
	k.meta.Size += int64(n)
	return n, err
}

func (k *snapshotSink) Close() error {
	if k.done {
		return nil
	}
	k.done = true
	if err := k.finish(); err != nil {
		os.RemoveAll(k.dir)
		return err
	}
	return nil
}

func (k *snapshotSink) finish() error {
	if k.f != nil {
		if err := k.w.Flush(); err != nil {
			k.f.Close()
			return err
		}
		if err := k.f.Sync(); err != nil {
			k.f.Close()
			return err
		}
		if err := k.f.Close(); err != nil {
			return err
		}
	}
	if !k.meta.Held {
		k.meta.CRC = k.crc.Sum(nil)
	}
	if err := writeMeta(k.dir, &k.meta); err != nil {
		return err
	}
	k.store.mu.Lock()
	defer k.store.mu.Unlock()
	final := strings.TrimSuffix(k.dir, snapshotTmpSuffix)
	if err := os.Rename(k.dir, final); err != nil {
		return err
	}
	if err := durable.SyncDir(k.store.dir); err != nil {
		return err
	}
	if !k.meta.Held {
		k.store.received = k.meta.ID
	}
	if err := k.store.reap(); err != nil {
		k.store.log.Warn("removing old raft snapshots", "err", err)
	}
	return nil
}

func (k *snapshotSink) Cancel() error {
	if k.done {
		return nil
	}
	k.done = true
	if k.f != nil {
		k.f.Close()
	}
	return os.RemoveAll(k.dir)
}
