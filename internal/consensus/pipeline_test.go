package consensus

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestPipelineGoesOnAfterItsReaderStops plays raft's leader after its pipeline decoder has
// stopped (a follower answered Success=false): it takes one response, then only sends. Over
// raft's own pipeline the second of those sends waits forever, and so does raft's Shutdown;
// over the transport New gives raft, every send returns, the responses wait in order, and Close
// returns.
func TestPipelineGoesOnAfterItsReaderStops(t *testing.T) {
	// Refuse every entry, echoing which request this answers in LastLog.
	p := pipelineTo(t, func(req *raft.AppendEntriesRequest) *raft.AppendEntriesResponse {
		return &raft.AppendEntriesResponse{Term: req.Term, LastLog: req.PrevLogEntry, Success: false}
	})
	send := func(i uint64) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			_, err := p.AppendEntries(&raft.AppendEntriesRequest{Term: 1, PrevLogEntry: i}, new(raft.AppendEntriesResponse))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("send %d never returned: the pipeline's responses are not read", i)
		}
	}
	send(1)
	if f := <-p.Consumer(); f.Response().Success || f.Response().LastLog != 1 {
		t.Fatalf("first response %+v", f.Response())
	}
	// The reader stops here, as raft's decoder does on Success=false.
	for i := uint64(2); i <= 6; i++ {
		send(i)
	}
	for i := uint64(2); i <= 6; i++ {
		select {
		case f := <-p.Consumer():
			if err := f.Error(); err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			if got := f.Response().LastLog; got != i {
				t.Fatalf("response for request %d where %d was due", got, i)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no response %d", i)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close never returned")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestPipelineClosedWithResponsesHeld closes a pipeline while responses nobody took are held.
func TestPipelineClosedWithResponsesHeld(t *testing.T) {
	p := pipelineTo(t, func(*raft.AppendEntriesRequest) *raft.AppendEntriesResponse {
		return &raft.AppendEntriesResponse{Success: true}
	})
	var last raft.AppendFuture
	var err error
	for range 4 {
		if last, err = p.AppendEntries(&raft.AppendEntriesRequest{Term: 1}, new(raft.AppendEntriesResponse)); err != nil {
			t.Fatal(err)
		}
	}
	if err := last.Error(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, inmem := raft.NewInmemTransport("")
	if withPipelineQueues(inmem) != raft.Transport(inmem) {
		t.Fatal("raft's in-memory transport was wrapped")
	}
}

// pipelineTo opens a pipeline, through the transport New gives raft, from one TCP transport to
// another whose every AppendEntries is answered by answer.
func pipelineTo(t *testing.T, answer func(*raft.AppendEntriesRequest) *raft.AppendEntriesResponse) raft.AppendPipeline {
	t.Helper()
	follower, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follower.Close() })
	go func() {
		for rpc := range follower.Consumer() {
			req, ok := rpc.Command.(*raft.AppendEntriesRequest)
			if !ok {
				rpc.Respond(nil, io.ErrUnexpectedEOF)
				continue
			}
			rpc.Respond(answer(req), nil)
		}
	}()
	leader, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leader.Close() })
	p, err := withPipelineQueues(leader).AppendEntriesPipeline("follower", follower.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
