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

	"github.com/witnessnet/witnessnet/internal/jsonscan"
	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// submitRequest is the body of POST /v1/entries.
type submitRequest struct {
	Envelope   json.RawMessage `json:"envelope"`
	Layout     string          `json:"layout,omitempty"`
	PublicKeys []string        `json:"public_keys,omitempty"`
}

// submitAnswer is the body of a successful submission. A record appended (201) or already in
// the log (200) has index and entry; a threshold contribution has pending, signatures and
// threshold (202 while short, 201 when it completed the group, with index and entry) or, for a
// group already complete, index, pending and complete (200).
type submitAnswer struct {
	Index      *uint64 `json:"index,omitempty"`
	Entry      string  `json:"entry,omitempty"`
	Pending    string  `json:"pending,omitempty"`
	Signatures int     `json:"signatures,omitempty"`
	Threshold  int     `json:"threshold,omitempty"`
	Complete   bool    `json:"complete,omitempty"`
}

func indexOf(i uint64) *uint64 { return &i }

// Bounds on one submission's verification work, which grows with signatures times candidate
// keys: no in-toto step needs more functionaries than this.
const (
	maxSignatures = 64
	maxPublicKeys = 64
)

// admit checks a submission before anything is replicated and turns it into a record or a
// co-signing contribution. Every failure is an *Error with a 4xx status; nothing has changed
// when it returns one. Signatures are checked under admission rules through a (see
// intoto.Admission): at once when a is nil, deferred otherwise (see admitAll).
func (n *Node) admit(body []byte, a *intoto.Admission) (*admitted, error) {
	req, err := decodeSubmission(body)
	if err != nil {
		return nil, err
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
	return n.admitEnvelope(raw, req.Layout, req.PublicKeys, a)
}

// admitEnvelope is admission of one envelope with the layout and keys it was submitted with: on
// a submission, and again on the leader for a record a member forwards (readmit).
func (n *Node) admitEnvelope(env []byte, layout string, keys []string, a *intoto.Admission) (*admitted, error) {
	m, err := intoto.ParseMetadata(env)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed_envelope", "envelope: %v", err)
	}
	if len(m.Signatures) > maxSignatures {
		return nil, errorf(http.StatusBadRequest, "too_many_signatures", "%d signatures; at most %d", len(m.Signatures), maxSignatures)
	}
	return n.admitInToto(env, m, &submitRequest{Envelope: env, Layout: layout, PublicKeys: keys}, a)
}

// decodeSubmission decodes a submission: in one pass when it has the common form, else with
// encoding/json (decodeStrict), which then decides.
func decodeSubmission(body []byte) (submitRequest, error) {
	if req, ok := scanSubmission(body); ok {
		return req, nil
	}
	var req submitRequest
	return req, decodeStrict(body, &req)
}

// scanSubmission decodes the common form of a submission in one pass (see package jsonscan);
// when it cannot, ok is false and decodeStrict decides.
func scanSubmission(body []byte) (req submitRequest, ok bool) {
	s := jsonscan.New(body)
	s.Object(func(k string) {
		switch k {
		case "envelope":
			req.Envelope = s.Raw()
		case "layout":
			req.Layout = s.String()
		case "public_keys":
			req.PublicKeys = s.Strings()
		default:
			s.Fail()
		}
	})
	if !s.End() {
		return submitRequest{}, false // nothing half-decoded reaches encoding/json, which decodes into it
	}
	return req, true
}

// decodeStrict decodes one JSON object with no unknown fields and nothing after it.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "malformed_request", "request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "malformed_request", "request body: trailing data after the JSON object")
	}
	return nil
}

// readSubmission reads a submission's JSON body, at most max_request_bytes.
func (n *Node) readSubmission(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := readBody(http.MaxBytesReader(w, r.Body, n.cfg.MaxRequestBytes), r.ContentLength, n.cfg.MaxRequestBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds %d bytes", n.cfg.MaxRequestBytes)
		}
		return nil, errorf(http.StatusBadRequest, "malformed_request", "read body: %v", err)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
	}
	return body, nil
}

// readBody reads r to its end. A body that says its size (Content-Length) is read into one
// buffer of that size, at most limit, instead of one that doubles as it fills: batches are
// hundreds of KiB, and every doubling copies and clears what it has.
func readBody(r io.Reader, size, limit int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	// One byte more than announced, so the read that meets the end finds room.
	buf := make([]byte, 0, min(size, limit)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// handleSubmit is POST /v1/entries. A submission joins the others that arrive meanwhile (see
// relayer): the leader admits them together, their signatures checked in one batch, and a
// member that does not lead relays them to the leader together. Each is answered as if it had
// been submitted alone.
func (n *Node) handleSubmit(w http.ResponseWriter, r *http.Request) {
	body, err := n.readSubmission(w, r)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	res := n.relayer.submit(r.Context(), []json.RawMessage{body})[0]
	if res.Error != "" {
		n.writeError(w, r, &Error{Status: res.Status, Code: res.Error, Message: res.Message, RetryAfter: time.Duration(res.RetryAfter) * time.Second})
		return
	}
	writeJSON(w, res.Status, res.submitAnswer)
}

func recordAnswer(rec *ledger.Record, res ledger.Result) (int, submitAnswer, error) {
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	return status, submitAnswer{Index: indexOf(res.Index), Entry: rec.Identity.String()}, nil
}

// contribute replicates a contribution to a threshold link and says how to answer: 202 while the
// group is short of signatures, 201 when this contribution completed it, 200 if it was already
// complete.
func (n *Node) contribute(ctx context.Context, con *ledger.Contribution) (int, submitAnswer, error) {
	b, _ := con.MarshalBinary()
	res, err := n.proposeNow(ctx, ledger.KindCosign, [][]byte{b})
	if err != nil {
		return 0, submitAnswer{}, err
	}
	out := res[0]
	if out.Err == nil && out.Cosign != nil && out.Cosign.Appended {
		n.awaitLocal(ctx, out.Index)
	}
	switch {
	case out.Err != nil:
		return 0, submitAnswer{}, errorf(http.StatusConflict, "cosign_rejected", "%v", out.Err)
	case out.Cosign == nil:
		return 0, submitAnswer{}, fmt.Errorf("co-signing answered without a group state")
	case out.Duplicate:
		return http.StatusOK, submitAnswer{Index: indexOf(out.Index), Pending: out.Cosign.Group, Complete: true}, nil
	case out.Cosign.Appended:
		n.metrics.appended.Inc()
		e, err := n.ledger.Entry(ctx, out.Index)
		entry := ""
		if err == nil {
			entry = ledger.IdentityOf(e.Envelope).String()
		}
		return http.StatusCreated, submitAnswer{Index: indexOf(out.Index), Entry: entry, Pending: out.Cosign.Group,
			Signatures: out.Cosign.Signatures, Threshold: out.Cosign.Threshold}, nil
	default:
		return http.StatusAccepted, submitAnswer{Pending: out.Cosign.Group, Signatures: out.Cosign.Signatures, Threshold: out.Cosign.Threshold}, nil
	}
}

// committed waits for a queued record's outcome: its result, or an *Error.
func (n *Node) committed(ctx context.Context, done <-chan proposeResult) (ledger.Result, error) {
	res, err := n.proposer.wait(ctx, done)
	if err != nil {
		return ledger.Result{}, err
	}
	if res.Err != nil {
		return res, errorf(http.StatusBadRequest, "rejected", "%v", res.Err)
	}
	n.metrics.appended.Inc()
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
