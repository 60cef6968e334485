package node

import (
	"encoding/json"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/witnessnet/witnessnet/internal/jsonscan"
	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// maxBatchEntries bounds the entries of one POST /v1/entries/batch; the body as a whole is also
// bounded by max_request_bytes.
const maxBatchEntries = 1000

// batchRequest is the body of POST /v1/entries/batch: submissions as POST /v1/entries takes them.
type batchRequest struct {
	Entries []json.RawMessage `json:"entries"`
}

// batchResult is the outcome of one submission of a batch: the status and body POST /v1/entries
// would have answered for it alone, the error's code and message in place of a body.
type batchResult struct {
	Status int `json:"status"`
	submitAnswer
	Error      string `json:"error,omitempty"`
	Message    string `json:"message,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"` // seconds, for 429 and 503
}

// decodeBatchRequest decodes a batch: in one pass when it has the common form, else with
// encoding/json (decodeStrict), which then decides.
func decodeBatchRequest(body []byte) (batchRequest, error) {
	if req, ok := scanBatch(body); ok {
		return req, nil
	}
	var req batchRequest
	return req, decodeStrict(body, &req)
}

// BatchRequest is the body of POST /v1/entries/batch around submissions that are JSON already
// (each a POST /v1/entries body): written around them, not re-encoded, into a buffer of its size.
func BatchRequest(submissions [][]byte) []byte {
	size := len(`{"entries":[]}`) + max(len(submissions)-1, 0) // the commas
	for _, b := range submissions {
		size += len(b)
	}
	req := append(make([]byte, 0, size), `{"entries":[`...)
	for i, b := range submissions {
		if i > 0 {
			req = append(req, ',')
		}
		req = append(req, b...)
	}
	return append(req, "]}"...)
}

// scanBatch decodes the common form of a batch in one pass (see package jsonscan); when it
// cannot, ok is false and decodeStrict decides.
func scanBatch(body []byte) (req batchRequest, ok bool) {
	s := jsonscan.New(body)
	s.Object(func(k string) {
		if k != "entries" {
			s.Fail()
			return
		}
		req.Entries = []json.RawMessage{}
		s.Array(func() { req.Entries = append(req.Entries, s.Raw()) })
	})
	if !s.End() {
		return batchRequest{}, false // nothing half-decoded reaches encoding/json, which decodes into it
	}
	return req, true
}

// handleSubmitBatch takes many submissions in one request. Each is admitted, replicated and
// answered as if submitted alone, so one bad entry fails alone (see submitMany); a member that
// does not lead relays them to the leader. The answer is 200 with one result per submission, in
// order, once every admitted record is committed.
func (n *Node) handleSubmitBatch(w http.ResponseWriter, r *http.Request) {
	body, err := n.readSubmission(w, r)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	req, err := decodeBatchRequest(body)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if len(req.Entries) == 0 || len(req.Entries) > maxBatchEntries {
		n.writeError(w, r, errorf(http.StatusBadRequest, "batch_size", "a batch holds 1 to %d entries; this one holds %d", maxBatchEntries, len(req.Entries)))
		return
	}

	var out []batchResult
	if n.raft.IsLeader() {
		out = n.submitMany(r, req.Entries)
	} else {
		out = n.relayer.submit(r.Context(), req.Entries)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

// submitMany admits and replicates submissions on the leader and answers each as if it had been
// submitted alone. Admission runs on every core with the signatures checked in batches (see
// admitAll); the records go to the proposer together and share raft commands; contributions to
// threshold links go one by one, as they do alone.
func (n *Node) submitMany(r *http.Request, bodies []json.RawMessage) []batchResult {
	n.metrics.admittedTogether.Observe(float64(len(bodies)))
	out := make([]batchResult, len(bodies))
	adms := make([]*admitted, len(bodies))
	admitAll(len(bodies), func(i int, a *intoto.Admission) {
		adms[i], out[i] = nil, batchResult{}
		adm, err := n.admit(bodies[i], a)
		if err != nil {
			out[i] = n.failed(r, err)
			return
		}
		adms[i] = adm
	})
	for i := range adms {
		if adms[i] == nil {
			n.metrics.rejected.Inc()
		}
	}

	// Every record is queued before any is awaited. An envelope repeated within the batch is
	// queued once; its repetitions answer 200 with its index.
	queued := make([]<-chan proposeResult, len(adms))
	first := map[ledger.Identity]int{}
	repeats := map[int]int{}
	var ids []ledger.Identity
	for _, adm := range adms {
		if adm != nil && adm.rec != nil {
			ids = append(ids, adm.rec.Identity)
		}
	}
	stored, err := n.ledger.LookupAll(ids)
	if err != nil {
		stored = nil // not known to be in the log: the state machine deduplicates them
	}
	for i, adm := range adms {
		if adm == nil || adm.rec == nil {
			continue
		}
		idx := int64(-1)
		if stored != nil {
			idx, stored = stored[0], stored[1:]
		}
		if j, ok := first[adm.rec.Identity]; ok {
			repeats[i] = j
			continue
		}
		first[adm.rec.Identity] = i
		if idx >= 0 {
			out[i] = batchResult{Status: http.StatusOK, submitAnswer: submitAnswer{Index: indexOf(uint64(idx)), Entry: adm.rec.Identity.String()}}
			continue
		}
		b, _ := adm.rec.MarshalBinary()
		if queued[i], err = n.proposer.enqueue(b); err != nil {
			out[i] = n.failed(r, err)
		}
	}
	for i, adm := range adms {
		if adm != nil && adm.cosign != nil {
			out[i] = n.answered(r, func() (int, submitAnswer, error) { return n.contribute(r.Context(), adm.cosign) })
		}
	}
	var last uint64
	var anyRecord bool
	for i, done := range queued {
		if done == nil {
			continue
		}
		out[i] = n.answered(r, func() (int, submitAnswer, error) {
			res, err := n.committed(r.Context(), done)
			if err != nil {
				return 0, submitAnswer{}, err
			}
			last, anyRecord = max(last, res.Index), true
			return recordAnswer(adms[i].rec, res)
		})
	}
	answerRepeats(out, repeats)
	if anyRecord {
		n.awaitLocal(r.Context(), last)
	}
	return out
}

// answerRepeats answers each repeated submission i as its first copy repeats[i] was answered:
// an entry the first copy appended (201) is already in the log for the repeat (200).
func answerRepeats(out []batchResult, repeats map[int]int) {
	for i, j := range repeats {
		out[i] = out[j]
		if out[j].Status == http.StatusCreated {
			out[i].Status = http.StatusOK
		}
	}
}

// answered runs one submission's last step and turns its outcome into a batch result.
func (n *Node) answered(r *http.Request, step func() (int, submitAnswer, error)) batchResult {
	status, ans, err := step()
	if err != nil {
		return n.failed(r, err)
	}
	return batchResult{Status: status, submitAnswer: ans}
}

// failed is a batch result for an error, as writeError would have answered it.
func (n *Node) failed(r *http.Request, err error) batchResult {
	return errorResult(n.asError(r, err))
}

func errorResult(e *Error) batchResult {
	res := batchResult{Status: e.Status, Error: e.Code, Message: e.Message}
	if e.RetryAfter > 0 {
		res.RetryAfter = max(1, int(e.RetryAfter.Round(time.Second)/time.Second))
	}
	return res
}

// admitAll calls admit(i, a) for i in [0, n) on every core with signature checks deferred
// through a, makes the checks of all of them in batches (intoto.VerifyAdmissions), and calls
// admit again, checking at once (a.Again: the checks already made are not made twice), for each
// i whose deferred checks did not all hold. Every call that stands is one whose signature checks
// answered as they would at once: the outcomes are those of admit(i, nil), for about half the
// verification work.
func admitAll(n int, admit func(i int, a *intoto.Admission)) {
	as := make([]*intoto.Admission, n)
	parallel(n, func(i int) {
		as[i] = &intoto.Admission{Defer: true}
		admit(i, as[i])
	})
	var again []int
	for i, ok := range intoto.VerifyAdmissions(as) {
		if !ok {
			again = append(again, i)
		}
	}
	parallel(len(again), func(j int) { admit(again[j], as[again[j]].Again()) })
}

// parallel calls fn(0) … fn(n-1) on as many goroutines as there are cores to run them and
// returns when every call has returned.
func parallel(n int, fn func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}
