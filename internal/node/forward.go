package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// replicator is what the node needs from consensus.
type replicator interface {
	// Propose replicates records as one command of the given kind (on the leader) and returns
	// one result per record once the command is committed and applied. Off the leader it
	// returns an error wrapping errNotLeader.
	Propose(ctx context.Context, kind ledger.Kind, records [][]byte) ([]ledger.Result, error)
	// ProposeBoundary marks a checkpoint boundary at the current size.
	ProposeBoundary(ctx context.Context) error
	// Leader returns the member name of the current leader, or "" when there is none.
	Leader() string
	// LeaderChanged returns the leader this member knows now ("" for none) and a channel closed
	// when that changes.
	LeaderChanged() (leader string, changed <-chan struct{})
	IsLeader() bool
	Stats() RaftStats
}

// RaftStats is what the status page and metrics show of raft.
type RaftStats struct {
	State        string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
}

var errNotLeader = errors.New("not the leader")

// Domains separate the signatures on members' internal calls from each other and from every
// other use of a member's key.
const (
	forwardDomain = "witnessnet/forward/v1\n" // admitted records, to the leader
	relayDomain   = "witnessnet/relay/v1\n"   // submissions, to the leader
)

// queued is one payload waiting in a queue (a record to propose, a submission to relay), with
// the channel its result goes to.
type queued[R any] struct {
	payload []byte
	done    chan R
}

// pending is one record waiting to be proposed.
type pending = queued[proposeResult]

// runBatches takes queued payloads off queue until stop and hands them to flush in batches of at
// most maxN payloads and about maxBytes. Batching comes from draining the queue, not from a timer:
// under load batches grow, when idle a payload goes alone.
func runBatches[R any](queue <-chan queued[R], stop <-chan struct{}, maxN, maxBytes int, flush func([]queued[R])) {
	for {
		var first queued[R]
		select {
		case first = <-queue:
		case <-stop:
			return
		}
		batch := []queued[R]{first}
		size := len(first.payload)
	drain:
		for len(batch) < maxN && size < maxBytes {
			select {
			case it := <-queue:
				batch = append(batch, it)
				size += len(it.payload)
			default:
				break drain
			}
		}
		flush(batch)
	}
}

// payloads returns the payloads of a batch.
func payloads[R any](batch []queued[R]) [][]byte {
	out := make([][]byte, len(batch))
	for i, it := range batch {
		out[i] = it.payload
	}
	return out
}

type proposeResult struct {
	res ledger.Result
	err error
}

// proposer groups concurrent records into batches (runBatches): on the leader each batch is
// proposed as one raft command, or several back to back when large (raftReplicator.Propose); on a
// node that lost leadership each batch is one signed request to the leader.
type proposer struct {
	n     *Node
	queue chan pending
}

func newProposer(n *Node) *proposer {
	p := &proposer{n: n, queue: make(chan pending, n.cfg.QueueDepth)}
	for range n.cfg.ProposeWorkers {
		go runBatches(p.queue, n.stop, n.cfg.MaxBatch, n.cfg.MaxBatchBytes, p.flush)
	}
	return p
}

// enqueue queues one record; its result arrives on the returned channel. A full queue is
// overload: 429.
func (p *proposer) enqueue(rec []byte) (<-chan proposeResult, error) {
	it := pending{payload: rec, done: make(chan proposeResult, 1)}
	select {
	case p.queue <- it:
		return it.done, nil
	default:
		p.n.metrics.overload.Inc()
		return nil, &Error{Status: http.StatusTooManyRequests, Code: "overloaded",
			Message: "the node's proposal queue is full", RetryAfter: time.Second}
	}
}

// wait waits for the result of a queued record.
func (p *proposer) wait(ctx context.Context, done <-chan proposeResult) (ledger.Result, error) {
	select {
	case r := <-done:
		return r.res, r.err
	case <-ctx.Done():
		return ledger.Result{}, errTimeout()
	}
}

// errNotLeaderHere answers an internal call that only the leader takes.
func errNotLeaderHere() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "not_leader", Message: "this node is not the leader", RetryAfter: time.Second}
}

// errTimeout answers a request that ended before its entry was committed. The entry may still be
// appended; the client learns its index by resubmitting.
func errTimeout() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "timeout",
		Message: "the entry was not committed before the request ended; resubmit to learn its index", RetryAfter: time.Second}
}

func (p *proposer) flush(batch []pending) {
	recs := payloads(batch)
	ctx, cancel := context.WithTimeout(context.Background(), p.n.cfg.ProposeTimeout)
	defer cancel()
	results, err := p.n.replicate(ctx, ledger.KindEntries, recs)
	if err == nil && len(results) != len(batch) {
		err = fmt.Errorf("proposal returned %d results for %d records", len(results), len(batch))
	}
	for i, it := range batch {
		if err != nil {
			it.done <- proposeResult{err: unavailable(err)}
			continue
		}
		it.done <- proposeResult{res: results[i]}
	}
}

// unavailable turns a replication failure into a 503 the client can retry. The outcome may be
// indeterminate (leadership lost mid-flight); resubmitting the same envelope is always safe.
func unavailable(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Message: fmt.Sprintf("not committed: %v; resubmitting the same envelope is safe", err), RetryAfter: time.Second}
}

// proposeNow replicates one command without queueing, through the leader if this node does not
// lead. Threshold contributions take this path: they are rare and must not wait behind entries.
func (n *Node) proposeNow(ctx context.Context, kind ledger.Kind, recs [][]byte) ([]ledger.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ProposeTimeout)
	defer cancel()
	results, err := n.replicate(ctx, kind, recs)
	if err != nil {
		return nil, unavailable(err)
	}
	if len(results) != len(recs) {
		return nil, unavailable(fmt.Errorf("proposal returned %d results for %d records", len(results), len(recs)))
	}
	return results, nil
}

// replicate proposes admitted records as one command of kind when this member leads, and
// forwards them to the leader otherwise, again while leadership moves (whileLeaderMoves).
func (n *Node) replicate(ctx context.Context, kind ledger.Kind, recs [][]byte) ([]ledger.Result, error) {
	var results []ledger.Result
	err := n.whileLeaderMoves(ctx, func() error {
		err := errNotLeader
		if n.raft.IsLeader() {
			results, err = n.raft.Propose(ctx, kind, recs)
		}
		if errors.Is(err, errNotLeader) {
			results, err = n.forward(ctx, kind, recs)
		}
		return err
	})
	return results, err
}

// whileLeaderMoves calls attempt again, relayRetry apart, as long as it fails with an error after
// which its call certainly went nowhere because leadership is moving (leaderMoved), until ctx
// ends or the node stops. It returns the last attempt's error.
func (n *Node) whileLeaderMoves(ctx context.Context, attempt func() error) error {
	for {
		err := attempt()
		if !leaderMoved(err) {
			return err
		}
		select {
		case <-time.After(relayRetry):
		case <-ctx.Done():
			return err
		case <-n.stop:
			return err
		}
	}
}

// forward sends a batch of admitted records to the leader, signed with this member's key.
func (n *Node) forward(ctx context.Context, kind ledger.Kind, recs [][]byte) ([]ledger.Result, error) {
	var out []forwardResult
	if err := n.callLeader(ctx, "/v1/internal/propose", forwardDomain, encodeBatch(kind, recs), &out); err != nil {
		return nil, err
	}
	results := make([]ledger.Result, len(out))
	for i, r := range out {
		results[i] = ledger.Result{Index: r.Index, Duplicate: r.Duplicate, Cosign: r.Cosign}
		if r.Error != "" {
			results[i].Err = errors.New(r.Error)
		}
	}
	return results, nil
}

// memberClient is the HTTP client for calls to other members. A connection is given memberDial
// to open: a member that is gone without a word (its host or container stopped) drops the dial's
// packets instead of refusing them.
func memberClient() *http.Client {
	d := &net.Dialer{Timeout: memberDial, KeepAlive: 30 * time.Second}
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

const memberDial = 5 * time.Second

// callLeader posts body to the leader's internal endpoint path, signed with this member's key
// under domain, and decodes its JSON answer into out. The call is abandoned when this member
// learns of another leader (or of none): the one called may be gone, and waiting out a dial or
// an answer that will not come would keep every submission queued behind it waiting too. If
// the call had not got a connection by then, it went nowhere and the error says so
// (leaderMoved); otherwise its outcome is unknown.
func (n *Node) callLeader(ctx context.Context, path, domain string, body []byte, out any) error {
	leader, moved := n.raft.LeaderChanged()
	peer, ok := n.memberPeer(leader)
	if leader == "" || !ok || peer.URL == "" || leader == n.cfg.Name {
		return &Error{Status: http.StatusServiceUnavailable, Code: "no_leader", Message: "no raft leader is known", RetryAfter: time.Second}
	}
	call, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-moved:
			cancel(errLeaderChanged)
		case <-call.Done():
		}
	}()
	var connected atomic.Bool
	traced := httptrace.WithClientTrace(call, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	req, err := http.NewRequestWithContext(traced, http.MethodPost, peer.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Witnessnet-Member", n.cfg.Name)
	req.Header.Set("Witnessnet-Signature", base64.StdEncoding.EncodeToString(ed25519.Sign(n.cfg.WitnessKey, memberMessage(domain, body))))
	fail := func(err error) error {
		if context.Cause(call) == errLeaderChanged {
			if !connected.Load() {
				return &Error{Status: http.StatusServiceUnavailable, Code: "leader_changed", RetryAfter: time.Second,
					Message: fmt.Sprintf("the leader changed while %s was being called; the call went nowhere", leader)}
			}
			return fmt.Errorf("%s on %s: the leader changed during the call: %w", path, leader, err)
		}
		return fmt.Errorf("%s on %s: %w", path, leader, err)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	data, err := readBody(io.LimitReader(resp.Body, 16<<20), resp.ContentLength, 16<<20)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		refused := &leaderRefused{msg: fmt.Sprintf("%s on %s: %s: %s", path, leader, resp.Status, bytes.TrimSpace(data))}
		var e struct {
			Code string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil {
			refused.code = e.Code
		}
		return refused
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s on %s: %w", path, leader, err)
	}
	return nil
}

// errLeaderChanged is the cause of a call to the leader abandoned because the leader changed.
var errLeaderChanged = errors.New("the leader changed")

// leaderRefused is an answer other than 200 from the leader's internal endpoint.
type leaderRefused struct {
	msg  string
	code string // the error code of the answer's JSON body, if any
}

func (e *leaderRefused) Error() string { return e.msg }

// leaderMoved reports an error after which the call went nowhere because the node called, or
// this node, knows no leader or is not the leader: the call may be made again, to the new leader.
func leaderMoved(err error) bool {
	var e *Error
	var r *leaderRefused
	return (errors.As(err, &e) && (e.Code == "no_leader" || e.Code == "leader_changed")) || (errors.As(err, &r) && r.code == "not_leader")
}

// fromMember reads the body of a member's signed call to an internal endpoint. It fails unless a
// member signed it under domain.
func (n *Node) fromMember(w http.ResponseWriter, r *http.Request, domain string) (string, []byte, error) {
	// A batch drains until it holds MaxBatchBytes, so its last record or submission (at most
	// max_request_bytes) may take it past that.
	limit := int64(n.cfg.MaxBatchBytes) + max(int64(n.cfg.MaxBatchBytes), n.cfg.MaxRequestBytes) + 1<<20
	body, err := readBody(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	if err != nil {
		return "", nil, errorf(http.StatusRequestEntityTooLarge, "too_large", "forwarded batch: %v", err)
	}
	member := r.Header.Get("Witnessnet-Member")
	key, ok := n.forwardKeys[member]
	if !ok {
		var p Peer
		p, ok = n.memberPeer(member)
		key = p.ForwardKey
	}
	sig, _ := base64.StdEncoding.DecodeString(r.Header.Get("Witnessnet-Signature"))
	if !ok || !ed25519.Verify(key, memberMessage(domain, body), sig) {
		return "", nil, errorf(http.StatusForbidden, "not_a_member", "forwarded batch is not signed by a member")
	}
	return member, body, nil
}

type forwardResult struct {
	Index     uint64               `json:"index"`
	Duplicate bool                 `json:"duplicate,omitempty"`
	Error     string               `json:"error,omitempty"`
	Cosign    *ledger.CosignResult `json:"cosign,omitempty"`
}

// memberMessage is what a member signs to call another member's internal endpoint: the
// endpoint's domain and the body's hash.
func memberMessage(domain string, body []byte) []byte {
	h := sha256.Sum256(body)
	return append([]byte(domain), h[:]...)
}

// handleForward is the leader's side of forwarding: a member's signed batch of admitted records.
func (n *Node) handleForward(w http.ResponseWriter, r *http.Request) {
	member, body, err := n.fromMember(w, r, forwardDomain)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	kind, recs, err := decodeBatch(body)
	if err != nil {
		n.writeError(w, r, errorf(http.StatusBadRequest, "malformed_batch", "%v", err))
		return
	}
	if !n.raft.IsLeader() {
		n.writeError(w, r, errNotLeaderHere())
		return
	}
	out := make([]forwardResult, len(recs))
	var keep []int
	var admitted [][]byte
	refused := make([]error, len(recs))
	admitAll(len(recs), func(i int, a *intoto.Admission) { refused[i] = n.readmit(kind, recs[i], a) })
	for i, rec := range recs {
		if err := refused[i]; err != nil {
			n.log.Warn("refused a forwarded record that fails admission here", "member", member, "err", err)
			n.metrics.rejected.Inc()
			out[i].Error = fmt.Sprintf("refused by the leader: %v", err)
			continue
		}
		keep, admitted = append(keep, i), append(admitted, rec)
	}
	if len(admitted) > 0 {
		results, err := n.raft.Propose(r.Context(), kind, admitted)
		if err != nil {
			n.writeError(w, r, unavailable(err))
			return
		}
		for j, res := range results {
			i := keep[j]
			out[i] = forwardResult{Index: res.Index, Duplicate: res.Duplicate, Cosign: res.Cosign}
			if res.Err != nil {
				out[i].Error = res.Err.Error()
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// encodeBatch encodes a forwarded command: its kind, then uvarint-prefixed records.
func encodeBatch(kind ledger.Kind, recs [][]byte) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, r := range recs {
		n += binary.MaxVarintLen64 + len(r)
	}
	out := append(make([]byte, 0, n), byte(kind))
	out = binary.AppendUvarint(out, uint64(len(recs)))
	for _, r := range recs {
		out = binary.AppendUvarint(out, uint64(len(r)))
		out = append(out, r...)
	}
	return out
}

func decodeBatch(b []byte) (ledger.Kind, [][]byte, error) {
	if len(b) == 0 {
		return 0, nil, errors.New("empty batch")
	}
	kind := ledger.Kind(b[0])
	if kind != ledger.KindEntries && kind != ledger.KindCosign && kind != ledger.KindMembership {
		return 0, nil, fmt.Errorf("members cannot forward commands of kind %d", kind)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return 0, nil, errors.New("bad record count")
	}
	b = b[k:]
	recs := make([][]byte, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return 0, nil, errors.New("bad record length")
		}
		recs = append(recs, b[k:k+int(l)])
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return 0, nil, errors.New("trailing bytes")
	}
	return kind, recs, nil
}
