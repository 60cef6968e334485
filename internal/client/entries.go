package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

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

// submitEnvelope posts an envelope and returns the status and the decoded answer.
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
