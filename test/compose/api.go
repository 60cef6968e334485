package compose

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// API is a thin client of one node's HTTP API, for the suite's observers (not the workload, which
// records every request it makes).
type API struct {
	Name string
	URL  string
	HTTP *http.Client
}

// Status is GET /v1/status.
type Status struct {
	Name           string `json:"name"`
	RaftState      string `json:"raft_state"`
	Leader         string `json:"leader"`
	Term           uint64 `json:"term"`
	AppliedIndex   uint64 `json:"applied_index"`
	LogSize        uint64 `json:"log_size"`
	TreeSize       uint64 `json:"tree_size"`
	CheckpointSize uint64 `json:"checkpoint_size"`
}

func (a *API) get(ctx context.Context, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return b, resp.StatusCode, err
}

func (a *API) getOK(ctx context.Context, path string) ([]byte, error) {
	b, code, err := a.get(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("%s GET %s: %w", a.Name, path, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s GET %s: %d %s", a.Name, path, code, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// Status fetches /v1/status.
func (a *API) Status(ctx context.Context) (*Status, error) {
	b, err := a.getOK(ctx, "/v1/status")
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s status: %w", a.Name, err)
	}
	return &s, nil
}

// Checkpoint fetches /checkpoint.
func (a *API) Checkpoint(ctx context.Context) ([]byte, error) { return a.getOK(ctx, "/checkpoint") }

// Consistency fetches a consistency proof.
func (a *API) Consistency(ctx context.Context, old, size uint64) ([][]byte, error) {
	b, err := a.getOK(ctx, fmt.Sprintf("/v1/proof/consistency?old=%d&size=%d", old, size))
	if err != nil {
		return nil, err
	}
	var r struct {
		Hashes [][]byte `json:"hashes"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s consistency proof: %w", a.Name, err)
	}
	return r.Hashes, nil
}

// EntryLeaf fetches /v1/entries/{index} and returns the Merkle leaf data.
func (a *API) EntryLeaf(ctx context.Context, index uint64) ([]byte, int, error) {
	b, code, err := a.get(ctx, "/v1/entries/"+strconv.FormatUint(index, 10))
	if err != nil || code != http.StatusOK {
		return nil, code, err
	}
	var r struct {
		Leaf string `json:"leaf"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, code, fmt.Errorf("%s entry %d: %w", a.Name, index, err)
	}
	leaf, err := base64.StdEncoding.DecodeString(r.Leaf)
	return leaf, code, err
}

// TilePath encodes a tile index as C2SP tlog-tiles does: groups of three digits, every group but
// the last prefixed with x.
func TilePath(n uint64) string {
	groups := []string{fmt.Sprintf("%03d", n%1000)}
	for n /= 1000; n > 0; n /= 1000 {
		groups = append([]string{fmt.Sprintf("x%03d", n%1000)}, groups...)
	}
	return strings.Join(groups, "/")
}

// ParseBundle splits a tlog-tiles entry bundle: entries each prefixed by a big-endian uint16
// length.
func ParseBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("entry bundle: truncated length")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, fmt.Errorf("entry bundle: entry of %d bytes, %d left", n, len(b)-2)
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}

// Leaves fetches the first size leaves through the entry bundles.
func (a *API) Leaves(ctx context.Context, size uint64) ([][]byte, error) {
	const width = 256
	var out [][]byte
	for t := uint64(0); t*width < size; t++ {
		path := "/tile/entries/" + TilePath(t)
		if w := min(size-t*width, width); w < width {
			path += ".p/" + strconv.FormatUint(w, 10)
		}
		b, err := a.getOK(ctx, path)
		if err != nil {
			return nil, err
		}
		es, err := ParseBundle(b)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", a.Name, path, err)
		}
		out = append(out, es...)
	}
	if uint64(len(out)) != size {
		return nil, fmt.Errorf("%s: entry bundles hold %d entries, want %d", a.Name, len(out), size)
	}
	return out, nil
}

// LeafHashes fetches the Merkle leaf hashes of the first size entries from the level-0 tiles.
func (a *API) LeafHashes(ctx context.Context, size uint64) ([][]byte, error) {
	const width = 256
	var out [][]byte
	for t := uint64(0); t*width < size; t++ {
		path := "/tile/0/" + TilePath(t)
		w := min(size-t*width, width)
		if w < width {
			path += ".p/" + strconv.FormatUint(w, 10)
		}
		b, err := a.getOK(ctx, path)
		if err != nil {
			return nil, err
		}
		if uint64(len(b)) != w*32 {
			return nil, fmt.Errorf("%s %s: %d bytes, want %d", a.Name, path, len(b), w*32)
		}
		for i := range w {
			out = append(out, b[i*32:(i+1)*32])
		}
	}
	return out, nil
}

// EvidenceRecord is one record of a node's /v1/evidence.
type EvidenceRecord struct {
	Kind    string   `json:"kind"`
	Size    uint64   `json:"size"`
	Signers []string `json:"signers"`
	Theirs  string   `json:"theirs"`
	Ours    string   `json:"ours"`
}

// Evidence fetches the evidence of disagreements a node holds.
func (a *API) Evidence(ctx context.Context) ([]EvidenceRecord, error) {
	b, err := a.getOK(ctx, "/v1/evidence")
	if err != nil {
		return nil, err
	}
	var v struct {
		Evidence []EvidenceRecord `json:"evidence"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s /v1/evidence: %w", a.Name, err)
	}
	return v.Evidence, nil
}

// newHTTPClient is a client that does not keep a dead node's connections for long.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second, DisableCompression: true,
	}}
}
