package node

import (
	"encoding/json"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/witnessnet/witnessnet/internal/ledger"
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
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

// handleSubmitBatch admits many submissions in one request. Each is admitted (signatures checked
// on every core), replicated and answered as if submitted alone, so one bad entry fails alone;
// the records go to the proposer together and share raft commands. The answer is 200 with one
// result per submission, in order, once every admitted record is committed.
func (n *Node) handleSubmitBatch(w http.ResponseWriter, r *http.Request) {
	body, err := n.readSubmission(w, r)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	var req batchRequest
	if err := decodeStrict(body, &req); err != nil {
		n.writeError(w, r, err)
		return
	}
	if len(req.Entries) == 0 || len(req.Entries) > maxBatchEntries {
		n.writeError(w, r, errorf(http.StatusBadRequest, "batch_size", "a batch holds 1 to %d entries; this one holds %d", maxBatchEntries, len(req.Entries)))
		return
	}

	out := make([]batchResult, len(req.Entries))
	adms := make([]*admitted, len(req.Entries))
	parallel(len(req.Entries), func(i int) {
		adm, err := n.admit(req.Entries[i])
		if err != nil {
			n.metrics.rejected.Inc()
			out[i] = n.failed(r, err)
			return
		}
		adms[i] = adm
	})

	// Records: every one is queued before any is awaited, so they share raft commands. An
	// envelope the batch repeats is queued once; its repetitions answer 200 with its index.
	queued := make([]<-chan proposeResult, len(adms))
	first := map[ledger.Identity]int{}
	repeats := map[int]int{}
	for i, adm := range adms {
		if adm == nil || adm.rec == nil {
			continue
		}
		if j, ok := first[adm.rec.Identity]; ok {
			repeats[i] = j
			continue
		}
		first[adm.rec.Identity] = i
		if idx, err := n.ledger.Lookup(adm.rec.Identity); err == nil {
			out[i] = batchResult{Status: http.StatusOK, submitAnswer: submitAnswer{Index: indexOf(idx), Entry: adm.rec.Identity.String()}}
			continue
		}
		b, _ := adm.rec.MarshalBinary()
		if queued[i], err = n.proposer.enqueue(b); err != nil {
			out[i] = n.failed(r, err)
		}
	}
	// Contributions to threshold links go one by one, as they do alone.
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
	for i, j := range repeats {
		out[i] = out[j]
		if out[j].Status == http.StatusCreated {
			out[i].Status = http.StatusOK
		}
	}
	if anyRecord {
		n.awaitLocal(r.Context(), last)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
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
	e := n.asError(r, err)
	return batchResult{Status: e.Status, Error: e.Code, Message: e.Message}
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
