package consensus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// faultyTransport wraps an in-memory transport and drops or delays outgoing RPCs, like
// hashicorp/raft's fuzzy tests. Pipelining is refused so every AppendEntries goes through it.
type faultyTransport struct {
	*raft.InmemTransport
	dropPercent atomic.Int32
	maxDelay    atomic.Int64 // nanoseconds
	mu          sync.Mutex
	rng         *rand.Rand
}

var errDropped = errors.New("dropped by the test transport")

func (f *faultyTransport) fault() error {
	f.mu.Lock()
	drop := f.rng.IntN(100) < int(f.dropPercent.Load())
	var d time.Duration
	if m := f.maxDelay.Load(); m > 0 {
		d = time.Duration(f.rng.Int64N(m))
	}
	f.mu.Unlock()
	time.Sleep(d)
	if drop {
		return errDropped
	}
	return nil
}

func (f *faultyTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (f *faultyTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, a *raft.AppendEntriesRequest, r *raft.AppendEntriesResponse) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.InmemTransport.AppendEntries(id, target, a, r)
}

func (f *faultyTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, a *raft.RequestVoteRequest, r *raft.RequestVoteResponse) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.InmemTransport.RequestVote(id, target, a, r)
}

func (f *faultyTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, a *raft.RequestPreVoteRequest, r *raft.RequestPreVoteResponse) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.InmemTransport.RequestPreVote(id, target, a, r)
}

// Under 10% message loss and up to 5 ms of delay on every RPC the cluster still commits, and
// every acknowledged record is applied in one order on every member.
func TestReplicatesUnderLossAndDelay(t *testing.T) {
	var faulty []*faultyTransport
	c := newClusterWith(t, 3, nil, func(tr *raft.InmemTransport) raft.Transport {
		f := &faultyTransport{InmemTransport: tr, rng: rand.New(rand.NewPCG(uint64(len(faulty)), 7))}
		f.dropPercent.Store(10)
		f.maxDelay.Store(int64(5 * time.Millisecond))
		faulty = append(faulty, f)
		return f
	})
	acked := map[string]bool{}
	for i := range 150 {
		rec := fmt.Sprintf("r%d", i)
		deadline := time.Now().Add(20 * time.Second)
		for {
			l := c.leader()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := l.node.Propose(ctx, 1, [][]byte{[]byte(rec)})
			cancel()
			if err == nil {
				acked[rec] = true
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("record %s never committed: %v", rec, err)
			}
		}
	}
	for _, f := range faulty {
		f.dropPercent.Store(0)
		f.maxDelay.Store(0)
	}
	// Indeterminate proposals may have been retried, so members can hold a record twice; what
	// matters is one order everywhere and nothing acknowledged missing.
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := len(c.members[0].sm.records())
		same := true
		for _, m := range c.members[1:] {
			same = same && len(m.sm.records()) == n
		}
		if same && n >= len(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("members did not converge")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sameRecords(t, c)
	have := map[string]bool{}
	for _, r := range c.members[0].sm.records() {
		have[r] = true
	}
	for r := range acked {
		if !have[r] {
			t.Fatalf("acknowledged record %s lost", r)
		}
	}
}
