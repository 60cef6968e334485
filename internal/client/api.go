package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// API talks to one node's HTTP API.
type API struct {
	base string
	hc   *http.Client
}

func NewAPI(base string) *API {
	return &API{base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: 30 * time.Second}}
}

// APIError is a non-2xx answer.
type APIError struct {
	Status  int
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("server answered %d", e.Status)
	}
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Do sends a request with a JSON body (or none), retrying 429 and 503 answers after their
// Retry-After (a few times), and returns the status and body of a 2xx answer.
func (a *API) Do(method, path string, body []byte) (int, []byte, error) {
	return a.Send(method, path, "application/json", body)
}

// Send is Do with a body of the given content type.
func (a *API) Send(method, path, contentType string, body []byte) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			return 0, nil, fmt.Errorf("cannot reach %s: %w", a.base, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return 0, nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp.StatusCode, data, nil
		}
		if (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 5 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(wait, 1)) * time.Second)
			continue
		}
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil {
			e.Message = strings.TrimSpace(string(data))
		}
		return resp.StatusCode, nil, e
	}
}

func (a *API) GetJSON(path string, v any) error {
	_, data, err := a.Do(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// Entry is GET /v1/entries/{id}.
type Entry struct {
	Index      uint64          `json:"index"`
	Entry      string          `json:"entry"`
	Leaf       []byte          `json:"leaf"`
	Envelope   json.RawMessage `json:"envelope"`
	Layout     string          `json:"layout,omitempty"`
	PublicKeys []string        `json:"public_keys,omitempty"`
}

type InclusionProof struct {
	Index    uint64   `json:"index"`
	TreeSize uint64   `json:"tree_size"`
	Hashes   [][]byte `json:"hashes"`
}

type ConsistencyProof struct {
	OldSize  uint64   `json:"old_size"`
	TreeSize uint64   `json:"tree_size"`
	Hashes   [][]byte `json:"hashes"`
}

func (a *API) Checkpoint() ([]byte, error) {
	_, data, err := a.Do(http.MethodGet, "/checkpoint", nil)
	return data, err
}
