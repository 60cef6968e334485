package node

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
)

// relayer carries the submissions a member receives while it does not lead to the leader,
// which admits them: every submission is admitted once, by the node that replicates it, and a
// member cannot put in a batch what the leader's admission would refuse. Batching comes from
// draining the queue, as the proposer's does; a relayed batch is one signed request.
type relayer struct {
	n     *Node
	queue chan relayed
}

// relayRetry is how long a relayed batch waits before trying again while leadership moves.
const relayRetry = 50 * time.Millisecond

type relayed struct {
	body []byte
	done chan batchResult
}

func newRelayer(n *Node) *relayer {
	rl := &relayer{n: n, queue: make(chan relayed, n.cfg.QueueDepth)}
	for range n.cfg.ProposeWorkers {
		go rl.run()
	}
	return rl
}

// submit relays submissions to the leader and returns the leader's answer for each; once it
// has one, it gives this member's ledger a moment to apply what was appended (read-your-writes).
func (rl *relayer) submit(ctx context.Context, bodies []json.RawMessage) []batchResult {
	out := make([]batchResult, len(bodies))
	dones := make([]chan batchResult, len(bodies))
	for i, b := range bodies {
		it := relayed{body: b, done: make(chan batchResult, 1)}
		select {
		case rl.queue <- it:
			dones[i] = it.done
		default:
			rl.n.metrics.overload.Inc()
			out[i] = errorResult(&Error{Status: http.StatusTooManyRequests, Code: "overloaded",
				Message: "the node's relay queue is full", RetryAfter: time.Second})
		}
	}
	var last uint64
	var appended bool
	for i, done := range dones {
		if done == nil {
			continue
		}
		select {
		case out[i] = <-done:
		case <-ctx.Done():
			out[i] = errorResult(&Error{Status: http.StatusServiceUnavailable, Code: "timeout",
				Message: "the entry was not committed before the request ended; resubmit to learn its index", RetryAfter: time.Second})
			continue
		}
		if out[i].Index != nil && (out[i].Status == http.StatusCreated || out[i].Status == http.StatusOK) {
			last, appended = max(last, *out[i].Index), true
		}
	}
	if appended {
		rl.n.awaitLocal(ctx, last)
	}
	return out
}

func (rl *relayer) run() {
	for {
		var first relayed
		select {
		case first = <-rl.queue:
		case <-rl.n.stop:
			return
		}
		batch := []relayed{first}
		size := len(first.body)
	drain:
		for len(batch) < maxBatchEntries && size < rl.n.cfg.MaxBatchBytes {
			select {
			case it := <-rl.queue:
				batch = append(batch, it)
				size += len(it.body)
			default:
				break drain
			}
		}
		rl.flush(batch)
	}
}

func (rl *relayer) flush(batch []relayed) {
	bodies := make([][]byte, len(batch))
	for i, it := range batch {
		bodies[i] = it.body
	}
	ctx, cancel := context.WithTimeout(context.Background(), rl.n.cfg.ProposeTimeout)
	defer cancel()
	body := encodeBatch(ledger.KindEntries, bodies)
	var results []batchResult
	err := rl.n.callLeader(ctx, "/v1/internal/submit", relayDomain, body, &results)
	// Leadership is moving: the batch went nowhere, so it waits for the new leader rather than
	// failing every submission in it.
	for leaderMoved(err) && ctx.Err() == nil {
		select {
		case <-time.After(relayRetry):
		case <-ctx.Done():
		case <-rl.n.stop:
			cancel()
		}
		err = rl.n.callLeader(ctx, "/v1/internal/submit", relayDomain, body, &results)
	}
	if err == nil && len(results) != len(batch) {
		err = &Error{Status: http.StatusBadGateway, Code: "bad_leader_answer", Message: "the leader answered a relayed batch with the wrong number of results"}
	}
	for i, it := range batch {
		if err != nil {
			it.done <- errorResult(unavailable(err).(*Error))
			continue
		}
		it.done <- results[i]
	}
}

// handleRelay is the leader's side of relaying: a member's signed batch of submissions, admitted
// and answered here as if they had been submitted to this node.
func (n *Node) handleRelay(w http.ResponseWriter, r *http.Request) {
	_, body, err := n.fromMember(w, r, relayDomain)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	kind, subs, err := decodeBatch(body)
	if err != nil || kind != ledger.KindEntries || len(subs) == 0 || len(subs) > maxBatchEntries {
		n.writeError(w, r, errorf(http.StatusBadRequest, "malformed_batch", "a relayed batch holds 1 to %d submissions", maxBatchEntries))
		return
	}
	if !n.raft.IsLeader() {
		n.writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Code: "not_leader", Message: "this node is not the leader", RetryAfter: time.Second})
		return
	}
	bodies := make([]json.RawMessage, len(subs))
	for i, s := range subs {
		bodies[i] = s
	}
	writeJSON(w, http.StatusOK, n.submitMany(r, bodies))
}
