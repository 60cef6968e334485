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
// member cannot put in a batch what the leader's admission would refuse. Submissions are
// batched as the proposer's records are (runBatches); a relayed batch is one signed request.
// On the leader it gathers the single submissions (POST /v1/entries) that arrive together and
// admits them as one batch, so that their signatures are checked together as a batch request's
// are, not one at a time.
type relayer struct {
	n     *Node
	queue chan relayed
}

// relayRetry is how long a relayed batch waits before trying again while leadership moves.
const relayRetry = 50 * time.Millisecond

// relayed is one submission waiting to be relayed.
type relayed = queued[batchResult]

func newRelayer(n *Node) *relayer {
	rl := &relayer{n: n, queue: make(chan relayed, n.cfg.QueueDepth)}
	for range n.cfg.ProposeWorkers {
		go runBatches(rl.queue, n.stop, maxBatchEntries, n.cfg.MaxBatchBytes, rl.flush)
	}
	return rl
}

// submit relays submissions to the leader and returns the leader's answer for each; once it
// has one, it gives this member's ledger a moment to apply what was appended (read-your-writes).
func (rl *relayer) submit(ctx context.Context, bodies []json.RawMessage) []batchResult {
	out := make([]batchResult, len(bodies))
	dones := make([]chan batchResult, len(bodies))
	// A body repeated in the request is relayed once: relayed batches may reach the leader in
	// any order, and the first of the request's copies is the one appended.
	first := map[string]int{}
	repeats := map[int]int{}
	for i, b := range bodies {
		if j, ok := first[string(b)]; ok {
			repeats[i] = j
			continue
		}
		first[string(b)] = i
		it := relayed{payload: b, done: make(chan batchResult, 1)}
		select {
		case rl.queue <- it:
			dones[i] = it.done
		default:
			rl.n.metrics.overload.Inc()
			out[i] = errorResult(&Error{Status: http.StatusTooManyRequests, Code: "overloaded",
				Message: "the node's submission queue is full", RetryAfter: time.Second})
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
			out[i] = errorResult(errTimeout())
			continue
		}
		if out[i].Index != nil && (out[i].Status == http.StatusCreated || out[i].Status == http.StatusOK) {
			last, appended = max(last, *out[i].Index), true
		}
	}
	answerRepeats(out, repeats)
	if appended {
		rl.n.awaitLocal(ctx, last)
	}
	return out
}

func (rl *relayer) flush(batch []relayed) {
	ctx, cancel := context.WithTimeout(context.Background(), rl.n.cfg.ProposeTimeout)
	defer cancel()
	body := encodeBatch(ledger.KindEntries, payloads(batch))
	// Leadership is moving: the batch went nowhere, so it waits for the new leader rather than
	// failing every submission in it. When this member is that leader, it admits the batch
	// itself, as the leader answers a relayed batch.
	var results []batchResult
	err := rl.n.whileLeaderMoves(ctx, func() error {
		if rl.n.raft.IsLeader() {
			results = rl.n.submitMany(relayedHere(ctx), rawMessages(payloads(batch)))
			return nil
		}
		return rl.n.callLeader(ctx, "/v1/internal/submit", relayDomain, body, &results)
	})
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

// relayedHere is the request a batch this member relayed and then came to lead is admitted under.
func relayedHere(ctx context.Context) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/internal/submit", nil)
	return r
}

// rawMessages views submissions as the JSON values submitMany takes (no copy).
func rawMessages(bs [][]byte) []json.RawMessage {
	out := make([]json.RawMessage, len(bs))
	for i, b := range bs {
		out[i] = b
	}
	return out
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
		n.writeError(w, r, errNotLeaderHere())
		return
	}
	writeJSON(w, http.StatusOK, n.submitMany(r, rawMessages(subs)))
}
