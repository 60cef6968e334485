package node

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
)

// searchLimit bounds one search answer; a client pages with from=next.
const (
	searchLimit    = 1000
	searchScanCap  = 100000
	searchMaxTerms = 8
)

// searchResponse is GET /v1/search.
type searchResponse struct {
	Indices []uint64 `json:"indices"`
	Next    *uint64  `json:"next,omitempty"` // resume from here; absent when there is no more
}

// handleSearch answers GET /v1/search?type=&layout=&step=&key=&digest=&from=&limit=: the indexes
// of entries indexed under every given term, ascending. step is "<layout id>/<step name>" or, with
// layout given, just the step name.
func (n *Node) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var terms []string
	for _, p := range []string{ledger.TermType, ledger.TermLayout, ledger.TermKey, ledger.TermDigest, ledger.TermPending} {
		for _, v := range q[p] {
			terms = append(terms, ledger.Term(p, v))
		}
	}
	for _, v := range q[ledger.TermStep] {
		if l := q.Get(ledger.TermLayout); l != "" {
			v = l + "/" + v
		}
		terms = append(terms, ledger.Term(ledger.TermStep, v))
	}
	if len(terms) == 0 || len(terms) > searchMaxTerms {
		n.writeError(w, r, errorf(http.StatusBadRequest, "bad_query", "give between 1 and %d of type, layout, step, key, digest, pending", searchMaxTerms))
		return
	}
	from, limit, err := pageParams(q.Get("from"), q.Get("limit"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	// Walk the first term and keep what every other term also names. Each term's list is read
	// from the same start, at most searchScanCap long, so a query is bounded work.
	hits, err := n.ledger.Search(terms[0], from, searchScanCap)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	for _, t := range terms[1:] {
		if len(hits) == 0 {
			break
		}
		other, err := n.ledger.Search(t, hits[0], searchScanCap)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		hits = slices.DeleteFunc(hits, func(i uint64) bool { _, ok := slices.BinarySearch(other, i); return !ok })
	}
	resp := searchResponse{Indices: hits}
	if len(hits) > limit {
		next := hits[limit]
		resp.Indices, resp.Next = hits[:limit], &next
	}
	if resp.Indices == nil {
		resp.Indices = []uint64{}
	}
	writeJSON(w, http.StatusOK, resp)
}

func pageParams(fromS, limitS string) (uint64, int, error) {
	var from uint64
	limit := searchLimit
	var err error
	if fromS != "" {
		if from, err = strconv.ParseUint(fromS, 10, 64); err != nil {
			return 0, 0, errorf(http.StatusBadRequest, "bad_query", "from: want an index")
		}
	}
	if limitS != "" {
		if limit, err = strconv.Atoi(limitS); err != nil || limit < 1 || limit > searchLimit {
			return 0, 0, errorf(http.StatusBadRequest, "bad_query", "limit: want 1..%d", searchLimit)
		}
	}
	return from, limit, nil
}

// pendingView is one open co-signing group as the API shows it.
type pendingView struct {
	ID         string          `json:"id"`
	Layout     string          `json:"layout"`
	Step       string          `json:"step"`
	Payload    string          `json:"payload"`
	Signatures int             `json:"signatures"`
	Threshold  int             `json:"threshold"`
	Signers    []string        `json:"signers"`
	Created    time.Time       `json:"created"`
	Expires    time.Time       `json:"expires"`
	Envelope   json.RawMessage `json:"envelope,omitempty"`
}

// disagreement names a step for which functionaries signed different payloads.
type disagreement struct {
	Layout   string   `json:"layout"`
	Step     string   `json:"step"`
	Payloads []string `json:"payloads"`
}

type pendingResponse struct {
	Pending       []pendingView  `json:"pending"`
	Disagreements []disagreement `json:"disagreements"`
}

func viewOf(p *ledger.PendingLink, withEnvelope bool) pendingView {
	v := pendingView{ID: p.ID, Layout: p.Layout, Step: p.Step, Payload: p.Payload, Signatures: len(p.Signers),
		Threshold: p.Threshold, Signers: p.Signers, Created: time.Unix(0, p.Created).UTC(), Expires: time.Unix(0, p.Expires).UTC()}
	if withEnvelope {
		v.Envelope = p.Envelope
	}
	return v
}

// handlePending answers GET /v1/pending[?layout=]: open co-signing groups, and the steps whose
// open groups disagree (functionaries signed different payloads).
func (n *Node) handlePending(w http.ResponseWriter, r *http.Request) {
	groups, err := n.ledger.Pending(r.URL.Query().Get("layout"), time.Now())
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	var resp pendingResponse
	resp.Pending, resp.Disagreements = pendingViews(groups)
	writeJSON(w, http.StatusOK, resp)
}

// handlePendingGroup answers GET /v1/pending/{id}: the group with its envelope so far (what a
// co-signer signs), or, once complete, where its entry is.
func (n *Node) handlePendingGroup(w http.ResponseWriter, r *http.Request) {
	p, idx, done, err := n.ledger.PendingGroup(r.PathValue("id"))
	if err != nil {
		n.writeError(w, r, notFound(err))
		return
	}
	if done {
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "appended": true, "index": idx})
		return
	}
	if time.Now().UnixNano() >= p.Expires {
		n.writeError(w, r, errorf(http.StatusNotFound, "expired", "pending link %s expired at %s", p.ID, time.Unix(0, p.Expires).UTC()))
		return
	}
	writeJSON(w, http.StatusOK, viewOf(p, true))
}
