package consensus

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm adapts a StateMachine to raft.BatchingFSM.
type fsm struct {
	sm StateMachine
	// applying is the first raft index of the batch the state machine is applying, 0 between
	// batches: raft counts a batch applied once it hands it over, before the state machine has
	// stored it, which can take a while for a node catching up.
	applying atomic.Uint64
	// snaps is the member's snapshot store (nil in tests of the adapter alone).
	snaps *snapshotStore
	// appliedBytes and appliedCommands count the command entries raft has handed over, and
	// their bytes (sizeTrailingLog).
	appliedBytes, appliedCommands atomic.Uint64
}

var _ raft.BatchingFSM = (*fsm)(nil)

// ApplyBatch decodes the command entries of a batch and hands them to the state machine in one
// call. Entries at or below the state machine's applied index are skipped: after a restart raft
// replays its log from the last snapshot, and the durable state already holds them.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	if len(logs) > 0 {
		f.applying.Store(logs[0].Index)
		defer f.applying.Store(0)
	}
	out := make([]any, len(logs))
	applied := f.sm.AppliedIndex()
	var cmds []Command
	var pos []int
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		f.appliedBytes.Add(uint64(len(l.Data)))
		f.appliedCommands.Add(1)
		if l.Index <= applied {
			continue
		}
		c, err := DecodeCommand(l.Data)
		if err != nil {
			out[i] = err
			continue
		}
		c.Index, c.Term = l.Index, l.Term
		cmds = append(cmds, c)
		pos = append(pos, i)
	}
	if len(cmds) == 0 {
		return out
	}
	res := f.sm.Apply(cmds)
	for j, i := range pos {
		out[i] = res[j]
	}
	return out
}

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// Snapshot records the state's applied index; raft then records a held snapshot (see
// snapshotStore): the durable state is the snapshot, nothing is copied.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{applied: f.sm.AppliedIndex()}, nil
}

// Restore replaces the state with a snapshot the leader sent. The snapshots the restored state
// now holds are recorded as held, and their copies removed; a snapshot refused is removed.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.restore(rc); err != nil {
		// A snapshot the state machine refused (damaged on disk, or a tree that does not match
		// its leaves) is no use: the leader sends another. Kept, it would be restored again at
		// every start.
		if f.snaps != nil {
			f.snaps.discardReceived()
		}
		return err
	}
	if f.snaps != nil {
		if err := f.snaps.restored(f.sm.AppliedIndex()); err != nil {
			f.snaps.log.Warn("recording restored raft snapshots as held", "err", err)
		}
	}
	return nil
}

// restore hands the state machine the snapshot raft opened: the file the leader's snapshot was
// stored in when the state machine takes a file (a copy less), checked against its length and
// CRC first by reading rc, which reads that file; else the stream itself.
func (f *fsm) restore(rc io.Reader) error {
	if fr, ok := f.sm.(FileRestorer); ok && f.snaps != nil {
		if path := f.snaps.receivedFile(); path != "" {
			if _, err := io.Copy(io.Discard, rc); err != nil {
				return err
			}
			return fr.RestoreFile(path)
		}
	}
	return f.sm.Restore(rc)
}

type snapshot struct{ applied uint64 }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	k, ok := sink.(*snapshotSink)
	if !ok {
		sink.Cancel()
		return fmt.Errorf("snapshot sink %T: the state is not copied into a snapshot store's files", sink)
	}
	k.hold(s.applied)
	return sink.Close()
}

func (s *snapshot) Release() {}
