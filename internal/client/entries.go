package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
)

// EntryPath is the API path of an entry given as an index or sha256:<hex>.
func EntryPath(id string) (string, error) {
	if strings.HasPrefix(id, "sha256:") {
		if _, err := ledger.ParseIdentity(id); err != nil {
			return "", usagef("%v", err)
		}
		return "/v1/entries/" + id, nil
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return "", usagef("entry %q: want an index or sha256:<hex>", id)
		}
	}
	if id == "" {
		return "", usagef("entry: want an index or sha256:<hex>")
	}
	return "/v1/entries/" + id, nil
}

// FetchEntry gets an entry and checks it locally: the envelope hashes to the entry ID, and the
// Merkle leaf carries (or commits to) exactly that envelope.
func FetchEntry(a *API, id string) (*Entry, error) {
	path, err := EntryPath(id)
	if err != nil {
		return nil, err
	}
	var en Entry
	if err := a.GetJSON(path, &en); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(en.Envelope)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != en.Entry {
		return nil, fmt.Errorf("entry %d: envelope hashes to %s, server says %s", en.Index, got, en.Entry)
	}
	if strings.HasPrefix(id, "sha256:") && id != en.Entry {
		return nil, fmt.Errorf("asked for %s, got %s", id, en.Entry)
	}
	leaf, err := ledger.ParseLeaf(en.Leaf)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", en.Index, err)
	}
	switch {
	case leaf.Envelope != nil && !bytes.Equal(leaf.Envelope, en.Envelope):
		return nil, fmt.Errorf("entry %d: the leaf carries another envelope", en.Index)
	case leaf.Envelope == nil && "sha256:"+leaf.EnvelopeSHA256 != en.Entry:
		return nil, fmt.Errorf("entry %d: the leaf commits to another envelope", en.Index)
	}
	return &en, nil
}

// Submit posts an envelope and returns the status and the decoded answer.
func Submit(a *API, envelope []byte, layout string, keys []string) (int, map[string]any, error) {
	req := map[string]any{"envelope": json.RawMessage(envelope)}
	if layout != "" {
		req["layout"] = layout
	}
	if len(keys) > 0 {
		req["public_keys"] = keys
	}
	body, _ := json.Marshal(req)
	status, data, err := a.Do(http.MethodPost, "/v1/entries", body)
	if err != nil {
		return status, nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		return status, nil, err
	}
	return status, out, nil
}

// Submission is one entry as POST /v1/entries and POST /v1/entries/batch take it.
type Submission struct {
	Envelope   json.RawMessage `json:"envelope"`
	Layout     string          `json:"layout,omitempty"`
	PublicKeys []string        `json:"public_keys,omitempty"`
}

// BatchResult is a node's answer for one submission of a batch: the status and body it would
// have answered had the submission come alone, the error's code and message in place of a body.
type BatchResult struct {
	Status     int     `json:"status"`
	Index      *uint64 `json:"index,omitempty"`
	Entry      string  `json:"entry,omitempty"`
	Pending    string  `json:"pending,omitempty"`
	Signatures int     `json:"signatures,omitempty"`
	Threshold  int     `json:"threshold,omitempty"`
	Complete   bool    `json:"complete,omitempty"`
	Error      string  `json:"error,omitempty"`
	Message    string  `json:"message,omitempty"`
	RetryAfter int     `json:"retry_after,omitempty"`
}

// MaxBatch is the most submissions one POST /v1/entries/batch carries.
const MaxBatch = 1000

// SubmitBatch submits entries MaxBatch at a time and returns one result per submission, in
// order. A submission the node answered 429 or 503 for (overload, no leader) is sent again
// after its Retry-After, a few times.
func SubmitBatch(a *API, subs []Submission) ([]BatchResult, error) {
	out := make([]BatchResult, len(subs))
	for lo := 0; lo < len(subs); lo += MaxBatch {
		todo := make([]int, 0, MaxBatch)
		for i := lo; i < min(lo+MaxBatch, len(subs)); i++ {
			todo = append(todo, i)
		}
		for attempt := 0; len(todo) > 0; attempt++ {
			chunk := make([]Submission, len(todo))
			for j, i := range todo {
				chunk[j] = subs[i]
			}
			body, err := json.Marshal(map[string]any{"entries": chunk})
			if err != nil {
				return nil, err
			}
			_, data, err := a.Do(http.MethodPost, "/v1/entries/batch", body)
			if err != nil {
				return nil, err
			}
			var resp struct {
				Results []BatchResult `json:"results"`
			}
			if err := json.Unmarshal(data, &resp); err != nil {
				return nil, fmt.Errorf("batch answer: %w", err)
			}
			if len(resp.Results) != len(chunk) {
				return nil, fmt.Errorf("batch answer: %d results for %d submissions", len(resp.Results), len(chunk))
			}
			var again []int
			wait := 1
			for j, r := range resp.Results {
				out[todo[j]] = r
				if (r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable) && attempt < 5 {
					again = append(again, todo[j])
					wait = max(wait, r.RetryAfter)
				}
			}
			if len(again) > 0 {
				time.Sleep(time.Duration(wait) * time.Second)
			}
			todo = again
		}
	}
	return out, nil
}
