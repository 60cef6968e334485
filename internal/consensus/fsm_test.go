package consensus

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// blockingSM applies nothing until released.
type blockingSM struct {
	entered chan struct{}
	release chan struct{}
}

func (s *blockingSM) Apply(cmds []Command) []any {
	s.entered <- struct{}{}
	<-s.release
	return make([]any, len(cmds))
}
func (s *blockingSM) AppliedIndex() uint64 { return 0 }
func (s *blockingSM) ReadState() (io.ReadCloser, int64, error) {
	return io.NopCloser(strings.NewReader("")), 0, nil
}
func (s *blockingSM) Restore(io.Reader) error { return nil }

// While the state machine applies a batch, the fsm says which: Stats counts the batch applied
// only once the state machine returns, where raft counts it once handed over.
func TestFSMSaysWhatIsBeingApplied(t *testing.T) {
	sm := &blockingSM{entered: make(chan struct{}), release: make(chan struct{})}
	f := &fsm{sm: sm}
	var logs []*raft.Log
	for i := range 3 {
		logs = append(logs, &raft.Log{Index: uint64(5 + i), Type: raft.LogCommand, Data: EncodeCommand(1, time.Unix(0, 0), nil)})
	}
	done := make(chan struct{})
	go func() { f.ApplyBatch(logs); close(done) }()
	<-sm.entered
	if got := f.applying.Load(); got != 5 {
		t.Fatalf("applying %d while the batch from 5 is applied, want 5", got)
	}
	close(sm.release)
	<-done
	if got := f.applying.Load(); got != 0 {
		t.Fatalf("applying %d after the batch, want 0", got)
	}
}
