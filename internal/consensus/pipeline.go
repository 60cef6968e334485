package consensus

import (
	"sync"

	"github.com/hashicorp/raft"
)

// networkTransport is raft's NetworkTransport (over TCP or libp2p streams) with pipelines whose
// responses are always read, so that replication to a follower cannot stop for good.
//
// raft v1.8.0's NetworkTransport sizes both channels of a pipeline at MaxRPCsInFlight-2, zero at
// the default. When the leader's pipeline decoder stops (the follower answered Success=false, as
// one does after a restart when its log is behind, or with a newer term), nothing reads the
// pipeline's responses any more; the next response the pipeline decodes then waits forever to
// be handed over, and if raft's send loop picks one more send before it notices the decoder has
// stopped (it chooses at random between the two), that send waits forever to be queued. The
// follower still gets heartbeats, so it never calls an election, but no log entry reaches it
// again while this leader lives, and raft's Shutdown waits for that goroutine without end: a
// SIGTERM'd node hangs. The pipelines here move every response into a queue of their own as soon
// as it is decoded, so decoding and sending always go on until raft closes the pipeline.
type networkTransport struct {
	*raft.NetworkTransport
}

// What raft asks of a transport beyond raft.Transport is kept: pre-vote, and Close at shutdown.
var (
	_ raft.WithPreVote = networkTransport{}
	_ raft.WithClose   = networkTransport{}
)

// withPipelineQueues wraps raft's network transport; other transports (raft's in-memory one, in
// tests) are returned as they are.
func withPipelineQueues(t raft.Transport) raft.Transport {
	if nt, ok := t.(*raft.NetworkTransport); ok {
		return networkTransport{nt}
	}
	return t
}

// AppendEntriesPipeline returns raft's pipeline with its responses queued (pipeline).
func (t networkTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return newPipeline(p), nil
}

// pipeline is an AppendPipeline whose responses are read from the wrapped pipeline as soon as
// they are ready and held, in order, until raft takes them or closes the pipeline. It holds at
// most what raft sent and did not take: raft closes a pipeline shortly after it stops taking.
type pipeline struct {
	raft.AppendPipeline
	out  chan raft.AppendFuture
	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error
}

func newPipeline(p raft.AppendPipeline) *pipeline {
	q := &pipeline{AppendPipeline: p, out: make(chan raft.AppendFuture), stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *pipeline) run() {
	defer close(q.done)
	in := q.AppendPipeline.Consumer()
	var held []raft.AppendFuture
	for {
		var out chan raft.AppendFuture
		var next raft.AppendFuture
		if len(held) > 0 {
			out, next = q.out, held[0]
		}
		select {
		case f := <-in:
			held = append(held, f)
		case out <- next:
			held[0] = nil
			held = held[1:]
		case <-q.stop:
			return
		}
	}
}

// Consumer returns the responses in the order the requests were sent.
func (q *pipeline) Consumer() <-chan raft.AppendFuture { return q.out }

// Close closes the wrapped pipeline and drops the responses raft did not take.
func (q *pipeline) Close() error {
	q.once.Do(func() {
		q.err = q.AppendPipeline.Close()
		close(q.stop)
		<-q.done
	})
	return q.err
}
