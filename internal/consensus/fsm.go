package consensus

import (
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
		if l.Type != raft.LogCommand || l.Index <= applied {
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

// Snapshot returns a snapshot that streams the state when raft persists it. The stream may
// include commands applied after this call; that is safe because the state records its own
// applied index and skips replays.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) { return &snapshot{sm: f.sm}, nil }

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.sm.Restore(rc)
}

type snapshot struct{ sm StateMachine }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.sm.Snapshot(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
