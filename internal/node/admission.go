package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// submitRequest is the body of POST /v1/entries.
type submitRequest struct {
	Envelope   json.RawMessage `json:"envelope"`
	Layout     string          `json:"layout,omitempty"`
	PublicKeys []string        `json:"public_keys,omitempty"`
}

// submitResponse answers an accepted entry.
type submitResponse struct {
	Index uint64 `json:"index"`
	Entry string `json:"entry"`
}

// admit checks a submission before anything is replicated and turns it into a record. Every
// failure is an *Error with a 4xx status; nothing has changed when it returns one.
func (n *Node) admit(body []byte) (*ledger.Record, error) {
	var req submitRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed_request", "request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(http.StatusBadRequest, "malformed_request", "request body: trailing data after the JSON object")
	}
	raw := bytes.TrimSpace(req.Envelope)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errorf(http.StatusBadRequest, "missing_envelope", "the request has no envelope")
	}
	if req.Layout != "" {
		if _, err := ledger.ParseIdentity(req.Layout); err != nil {
			return nil, errorf(http.StatusBadRequest, "malformed_layout", "layout: %v", err)
		}
	}
	env, err := verify.ParseEnvelope(raw)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed_envelope", "envelope: %v", err)
	}
	keys := make([]*verify.PublicKey, 0, len(req.PublicKeys))
	for i, pem := range req.PublicKeys {
		k, err := verify.ParsePublicKey([]byte(pem))
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "malformed_key", "public_keys[%d]: %v", i, err)
		}
		keys = append(keys, k)
	}
	if err := verifyAllSignatures(env, keys); err != nil {
		return nil, err
	}
	leaf, blob, err := ledger.NewLeaf(raw, req.Layout, req.PublicKeys)
	if err != nil {
		return nil, errorf(http.StatusRequestEntityTooLarge, "too_large", "%v", err)
	}
	return &ledger.Record{Identity: ledger.IdentityOf(raw), Leaf: leaf, Blob: blob}, nil
}

// verifyAllSignatures requires every signature on the envelope to verify under one of the keys:
// an envelope that carries a signature nobody can check is rejected, not stored half-trusted.
func verifyAllSignatures(env *verify.Envelope, keys []*verify.PublicKey) error {
	if len(env.Signatures) == 0 {
		return errorf(http.StatusBadRequest, "unsigned", "the envelope carries no signature")
	}
	if len(keys) == 0 {
		return errorf(http.StatusBadRequest, "no_keys", "no public keys were sent to check the envelope's signatures")
	}
	for i, s := range env.Signatures {
		one := &verify.Envelope{PayloadType: env.PayloadType, Payload: env.Payload, Signatures: []verify.Signature{s}}
		if _, err := one.Verify(keys); err != nil {
			return errorf(http.StatusBadRequest, "bad_signature", "signature %d (keyid %q): %v", i, s.KeyID, err)
		}
	}
	return nil
}

func (n *Node) handleSubmit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n.cfg.MaxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			n.writeError(w, r, errorf(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds %d bytes", n.cfg.MaxRequestBytes))
			return
		}
		n.writeError(w, r, errorf(http.StatusBadRequest, "malformed_request", "read body: %v", err))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		n.writeError(w, r, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json"))
		return
	}
	rec, err := n.admit(body)
	if err != nil {
		n.metrics.rejected.Inc()
		n.writeError(w, r, err)
		return
	}
	if idx, err := n.ledger.Lookup(rec.Identity); err == nil {
		writeJSON(w, http.StatusOK, submitResponse{Index: idx, Entry: rec.Identity.String()})
		return
	}
	res, err := n.append(r.Context(), rec)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, submitResponse{Index: res.Index, Entry: rec.Identity.String()})
}

// append replicates one admitted record, on this node if it leads, else through the leader. It
// MUST NOT return success before a raft quorum has committed the entry.
func (n *Node) append(ctx context.Context, rec *ledger.Record) (ledger.Result, error) {
	b, _ := rec.MarshalBinary()
	res, err := n.proposer.propose(ctx, b)
	if err != nil {
		return ledger.Result{}, err
	}
	if res.Err != nil {
		return res, errorf(http.StatusBadRequest, "rejected", "%v", res.Err)
	}
	n.metrics.appended.Inc()
	return res, nil
}
