package compose

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/anishathalye/porcupine"
)

// The porcupine model is an append-only log. append(entry) returns the index the entry got, which
// MUST be the log's length at the moment the append takes effect; read(index) returns the entry at
// index. Entries are unique per operation (every append signs a fresh payload), so an append never
// meets its own entry already in the log.

type modelInput struct {
	kind  Kind
	entry string // append: the entry submitted
	index uint64 // read: the index asked for
}

type modelOutput struct {
	// absent: the append never took effect (a definite refusal, or an unknown outcome whose entry
	// is in no node's converged log).
	absent bool
	index  uint64 // append: where it landed
	entry  string // read: what was found
}

// logState is an immutable log: a list from the newest entry back, with a running hash so the
// checker's cache can compare states cheaply.
type logState struct {
	n    uint64
	hash uint64
	last *cell
}

type cell struct {
	entry string
	prev  *cell
}

func (s *logState) with(entry string) *logState {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(s.hash >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(entry))
	return &logState{n: s.n + 1, hash: h.Sum64(), last: &cell{entry: entry, prev: s.last}}
}

// at returns the entry at index i < n.
func (s *logState) at(i uint64) string {
	c := s.last
	for k := s.n - 1; k > i; k-- {
		c = c.prev
	}
	return c.entry
}

func equalStates(a, b *logState) bool {
	if a.n != b.n || a.hash != b.hash {
		return false
	}
	for x, y := a.last, b.last; x != nil && x != y; x, y = x.prev, y.prev {
		if x.entry != y.entry {
			return false
		}
	}
	return true
}

func step(state, input, output any) (bool, any) {
	s, in, out := state.(*logState), input.(modelInput), output.(modelOutput)
	switch in.kind {
	case Append:
		if out.absent {
			return true, s
		}
		if out.index != s.n {
			return false, s
		}
		return true, s.with(in.entry)
	default:
		return in.index < s.n && s.at(in.index) == out.entry, s
	}
}

// LogModel is the porcupine model of the append-only log.
var LogModel = porcupine.Model{
	Init:  func() any { return &logState{} },
	Step:  step,
	Equal: func(a, b any) bool { return equalStates(a.(*logState), b.(*logState)) },
	Hash:  func(s any) uint64 { return s.(*logState).hash ^ s.(*logState).n },
	DescribeOperation: func(input, output any) string {
		in, out := input.(modelInput), output.(modelOutput)
		switch {
		case in.kind == Read:
			return fmt.Sprintf("read(%d) -> %s", in.index, short(out.entry))
		case out.absent:
			return fmt.Sprintf("append(%s) -> no effect", short(in.entry))
		default:
			return fmt.Sprintf("append(%s) -> %d", short(in.entry), out.index)
		}
	},
	DescribeState: func(s any) string { return fmt.Sprintf("log of %d", s.(*logState).n) },
}

func short(id string) string {
	if len(id) > 19 {
		return id[7:19]
	}
	return id
}

// PorcupineHistory turns a recorded history into porcupine operations.
//
// final maps every entry in the converged log to its index. An append whose outcome is unknown
// returns at infinity; if its entry is in the converged log it took effect at that index, and if
// not it never took effect (the log only grows). Giving porcupine that index is what the converged
// log proves, and it keeps the search small. A read that found nothing is left out: reads are
// served from each node's local state, and a follower that has not yet applied an index answers
// not found without that being a linearizability claim of the API (MonotonicReads checks those
// answers instead). Reads that failed say nothing and are left out too.
func PorcupineHistory(ops []Op, final map[string]uint64) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		p := porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: op.Return}
		switch {
		case op.Kind == Read:
			if op.Outcome != Ok || !op.Found {
				continue
			}
			p.Input = modelInput{kind: Read, index: op.Index}
			p.Output = modelOutput{entry: op.Entry}
		case op.Outcome == Ok:
			p.Input = modelInput{kind: Append, entry: op.Entry}
			p.Output = modelOutput{index: op.Index}
		case op.Outcome == Failed:
			p.Input = modelInput{kind: Append, entry: op.Entry}
			p.Output = modelOutput{absent: true}
		default:
			p.Input = modelInput{kind: Append, entry: op.Entry}
			idx, ok := final[op.Entry]
			p.Output = modelOutput{absent: !ok, index: idx}
			p.Return = infinity
		}
		out = append(out, p)
	}
	return out
}

// CheckLinearizable runs porcupine over the history. Unknown (the search timed out) is reported
// as such, never as success.
func CheckLinearizable(ops []Op, final map[string]uint64, timeout time.Duration) (porcupine.CheckResult, int) {
	h := PorcupineHistory(ops, final)
	return porcupine.CheckOperationsTimeout(LogModel, h, timeout), len(h)
}
