package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/witnessnet/witnessnet/internal/consensus"
	"github.com/witnessnet/witnessnet/internal/ledger"
)

// stateMachine feeds committed raft commands to the ledger.
type stateMachine struct{ l *ledger.Ledger }

var (
	_ consensus.StateMachine = stateMachine{}
	_ consensus.FileRestorer = stateMachine{}
)

func (s stateMachine) Apply(cmds []consensus.Command) []any {
	lc := make([]ledger.Command, len(cmds))
	for i, c := range cmds {
		lc[i] = ledger.Command{Index: c.Index, Kind: ledger.Kind(c.Kind), Stamp: c.Stamp, Records: c.Records}
	}
	res := s.l.Apply(lc)
	out := make([]any, len(res))
	for i, r := range res {
		out[i] = r
	}
	return out
}

func (s stateMachine) AppliedIndex() uint64                     { return s.l.AppliedIndex() }
func (s stateMachine) ReadState() (io.ReadCloser, int64, error) { return s.l.ReadState() }
func (s stateMachine) Restore(r io.Reader) error                { return s.l.Restore(r) }
func (s stateMachine) RestoreFile(path string) error            { return s.l.RestoreFile(path) }

// raftReplicator is the replicator over a consensus.Node.
type raftReplicator struct{ n *consensus.Node }

var _ replicator = raftReplicator{}

// Propose replicates records as one command, or for entries as several back to back when they
// are many (consensus.Split); the results are in the records' order.
func (r raftReplicator) Propose(ctx context.Context, kind ledger.Kind, records [][]byte) ([]ledger.Result, error) {
	commands := [][][]byte{records}
	if kind == ledger.KindEntries {
		commands = consensus.Split(records)
	}
	resps, err := r.n.ProposeAll(ctx, uint8(kind), commands)
	if err != nil {
		if errors.Is(err, consensus.ErrNotLeader) {
			return nil, fmt.Errorf("%w: %v", errNotLeader, err)
		}
		return nil, err
	}
	out := make([]ledger.Result, 0, len(records))
	for _, resp := range resps {
		res, err := results(resp)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// results is the state machine's response to one command.
func results(resp any) ([]ledger.Result, error) {
	switch v := resp.(type) {
	case []ledger.Result:
		return v, nil
	case error:
		return nil, v
	default:
		return nil, fmt.Errorf("unexpected state machine response %T", resp)
	}
}

func (r raftReplicator) ProposeBoundary(ctx context.Context) error {
	_, err := r.n.Propose(ctx, uint8(ledger.KindBoundary), nil)
	return err
}

func (r raftReplicator) Leader() string {
	id, _ := r.n.Leader()
	return id
}

func (r raftReplicator) LeaderChanged() (string, <-chan struct{}) { return r.n.LeaderChanged() }

func (r raftReplicator) IsLeader() bool { return r.n.IsLeader() }

func (r raftReplicator) Stats() RaftStats {
	s := r.n.Stats()
	return RaftStats{State: s.State, Term: s.Term, CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex}
}
