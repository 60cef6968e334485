package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
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

// Bounds on one submission's verification work, which grows with signatures times candidate
// keys: no in-toto step needs more functionaries than this.
const (
	maxSignatures = 64
	maxPublicKeys = 64
)

// admit checks a submission before anything is replicated and turns it into a record or a
// co-signing contribution. Every failure is an *Error with a 4xx status; nothing has changed
// when it returns one.
func (n *Node) admit(body []byte) (*admitted, error) {
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
	if len(req.PublicKeys) > maxPublicKeys {
		return nil, errorf(http.StatusBadRequest, "too_many_keys", "%d public keys; at most %d", len(req.PublicKeys), maxPublicKeys)
	}
	return n.admitEnvelope(raw, req.Layout, req.PublicKeys)
}

// admitEnvelope is admission of one envelope with the layout and keys it was submitted with: on
// a submission, and again on the leader for a record a member forwards (readmit).
func (n *Node) admitEnvelope(env []byte, layout string, keys []string) (*admitted, error) {
	m, err := intoto.ParseMetadata(env)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed_envelope", "envelope: %v", err)
	}
	if len(m.Signatures) > maxSignatures {
		return nil, errorf(http.StatusBadRequest, "too_many_signatures", "%d signatures; at most %d", len(m.Signatures), maxSignatures)
	}
	return n.admitInToto(env, m, &submitRequest{Envelope: env, Layout: layout, PublicKeys: keys})
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
	adm, err := n.admit(body)
	if err != nil {
		n.metrics.rejected.Inc()
		n.writeError(w, r, err)
		return
	}
	if adm.cosign != nil {
		n.contribute(w, r, adm.cosign)
		return
	}
	rec := adm.rec
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

// pendingResponse202 answers a contribution that left its group short of signatures.
type pendingResponse202 struct {
	Pending    string `json:"pending"`
	Signatures int    `json:"signatures"`
	Threshold  int    `json:"threshold"`
}

// contribute replicates a contribution to a threshold link and answers 202 while the group is
// short of signatures, 201 when this contribution completed it, 200 if it was already complete.
func (n *Node) contribute(w http.ResponseWriter, r *http.Request, con *ledger.Contribution) {
	b, _ := con.MarshalBinary()
	res, err := n.proposeNow(r.Context(), ledger.KindCosign, [][]byte{b})
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	out := res[0]
	if out.Err == nil && out.Cosign != nil && out.Cosign.Appended {
		n.awaitLocal(r.Context(), out.Index)
	}
	switch {
	case out.Err != nil:
		n.writeError(w, r, errorf(http.StatusConflict, "cosign_rejected", "%v", out.Err))
	case out.Cosign == nil:
		n.writeError(w, r, fmt.Errorf("co-signing answered without a group state"))
	case out.Duplicate:
		writeJSON(w, http.StatusOK, map[string]any{"index": out.Index, "pending": out.Cosign.Group, "complete": true})
	case out.Cosign.Appended:
		n.metrics.appended.Inc()
		e, err := n.ledger.Entry(r.Context(), out.Index)
		entry := ""
		if err == nil {
			entry = ledger.IdentityOf(e.Envelope).String()
		}
		writeJSON(w, http.StatusCreated, map[string]any{"index": out.Index, "entry": entry, "pending": out.Cosign.Group, "signatures": out.Cosign.Signatures, "threshold": out.Cosign.Threshold})
	default:
		writeJSON(w, http.StatusAccepted, pendingResponse202{Pending: out.Cosign.Group, Signatures: out.Cosign.Signatures, Threshold: out.Cosign.Threshold})
	}
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
	n.awaitLocal(ctx, res.Index)
	return res, nil
}

// awaitLocal gives a follower a moment to apply what the leader committed, so that a client
// reading from the node it wrote to finds its entry (read-your-writes per node). It never fails
// the write: the entry is committed either way.
func (n *Node) awaitLocal(ctx context.Context, index uint64) {
	deadline := time.Now().Add(time.Second)
	for n.ledger.Size() <= index && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
}
