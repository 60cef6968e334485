package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// Errors of AddCheckpoint. Each is one row of the C2SP tlog-witness status table; see Status.
var (
	// ErrUnknownLog: the checkpoint's origin is not a log this witness witnesses (404).
	ErrUnknownLog = errors.New("unknown log origin")
	// ErrNoTrustedSignature: no signature on the checkpoint verifies under a key the witness
	// trusts for its origin (403).
	ErrNoTrustedSignature = errors.New("no valid signature by a trusted key of the log")
	// ErrBadRequest: the request body does not parse, or its old size exceeds the checkpoint's
	// size (400).
	ErrBadRequest = errors.New("bad request")
	// ErrBadProof: the consistency proof does not verify, a proof was sent where none belongs, or
	// the checkpoint has the size of the last cosigned one with another root (422).
	ErrBadProof = errors.New("unprocessable checkpoint")
)

// ConflictError: the request's old size is not the size of the last checkpoint cosigned for the
// origin (0 when none was). The client retries with Size as old size (409, text/x.tlog.size).
type ConflictError struct{ Size uint64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("old size is not the last cosigned size %d", e.Size)
}

// maxProofLines bounds the consistency proof: a proof for trees below 2^63 leaves has at most 63
// hashes.
const maxProofLines = 63

// AddRequest is a parsed C2SP tlog-witness add-checkpoint request body.
type AddRequest struct {
	Old        uint64
	Proof      [][]byte
	Checkpoint []byte // the signed note, as sent
}

// ParseAddRequest parses an add-checkpoint body: "old N", up to 63 base64 proof hashes one per
// line, an empty line, then the signed checkpoint. Any deviation is ErrBadRequest.
func ParseAddRequest(body []byte) (AddRequest, error) {
	var req AddRequest
	rest := body
	line := func() (string, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		l := string(rest[:i])
		rest = rest[i+1:]
		return l, true
	}
	first, ok := line()
	if !ok {
		return req, fmt.Errorf("%w: no old size line", ErrBadRequest)
	}
	num, found := strings.CutPrefix(first, "old ")
	size, err := strconv.ParseUint(num, 10, 64)
	if !found || err != nil || num != strconv.FormatUint(size, 10) {
		return req, fmt.Errorf("%w: first line %q is not \"old <size>\"", ErrBadRequest, first)
	}
	req.Old = size
	for {
		l, ok := line()
		if !ok {
			return req, fmt.Errorf("%w: no empty line before the checkpoint", ErrBadRequest)
		}
		if l == "" {
			break
		}
		if len(req.Proof) == maxProofLines {
			return req, fmt.Errorf("%w: more than %d proof lines", ErrBadRequest, maxProofLines)
		}
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != rfc6962.DefaultHasher.Size() {
			return req, fmt.Errorf("%w: proof line %q is not a base64 SHA-256 hash", ErrBadRequest, l)
		}
		req.Proof = append(req.Proof, h)
	}
	if len(rest) == 0 {
		return req, fmt.Errorf("%w: no checkpoint", ErrBadRequest)
	}
	req.Checkpoint = rest
	return req, nil
}

// LogKeys returns the note verifiers a witness trusts for a log origin, and whether it witnesses
// that origin at all.
type LogKeys func(origin string) ([]note.Verifier, bool)

// AddCheckpoint is the C2SP tlog-witness add-checkpoint operation for a log other than the
// node's own: verify the log's signature, check the old size against the last cosigned size and
// the consistency proof, persist the new state, then cosign. Check and persist happen in one
// bbolt transaction, so two concurrent requests for one origin cannot both advance from the same
// state, and a refusal changes nothing. It returns the cosignature as a note signature line.
func (w *Witness) AddCheckpoint(req AddRequest, logs LogKeys) ([]byte, error) {
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	keys, ok := logs(origin)
	if !ok || origin == "" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(keys...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, fmt.Errorf("%w: %v", ErrNoTrustedSignature, err)
		}
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrBadRequest, err)
	}
	cp, err := ParseCheckpoint(n.Text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if req.Old > cp.Size {
		return nil, fmt.Errorf("%w: old size %d is larger than the checkpoint size %d", ErrBadRequest, req.Old, cp.Size)
	}
	if cp.Size == 0 && !bytes.Equal(cp.Root, rfc6962.DefaultHasher.EmptyRoot()) {
		return nil, fmt.Errorf("%w: a checkpoint of size 0 must have the empty tree's root", ErrBadProof)
	}
	err = w.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketState)
		last, err := decodeState(b.Get([]byte(cp.Origin)))
		if err != nil {
			return err
		}
		var lastSize uint64
		if last != nil {
			lastSize = last.Size
		}
		if req.Old != lastSize {
			return &ConflictError{Size: lastSize}
		}
		if (req.Old == 0 || req.Old == cp.Size) && len(req.Proof) > 0 {
			return fmt.Errorf("%w: a proof from size %d to %d must be empty", ErrBadProof, req.Old, cp.Size)
		}
		next, err := Decide(last, cp, req.Proof)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadProof, err)
		}
		return b.Put([]byte(cp.Origin), encodeState(next))
	})
	if err != nil {
		return nil, err
	}
	sig, err := w.cosign(n.Text)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "\u2014 %s %s\n", sig.Name, sig.Base64), nil
}

// Status maps an AddCheckpoint error to its tlog-witness HTTP status code; 500 for anything
// else (a storage failure).
func Status(err error) int {
	var conflict *ConflictError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &conflict):
		return 409
	case errors.Is(err, ErrUnknownLog):
		return 404
	case errors.Is(err, ErrNoTrustedSignature):
		return 403
	case errors.Is(err, ErrBadRequest):
		return 400
	case errors.Is(err, ErrBadProof):
		return 422
	}
	return 500
}

// maxAddRequestBytes bounds an add-checkpoint body: 63 proof lines and a checkpoint with a few
// dozen signatures fit many times over.
const maxAddRequestBytes = 64 << 10

// Handler serves POST /add-checkpoint (C2SP tlog-witness) for the logs that logs names. A 200
// carries the cosignature line; a 409 carries the last cosigned size as text/x.tlog.size; other
// refusals carry a one-line reason as text/plain. refused, if not nil, sees every refusal (for
// metrics and alarms).
func (w *Witness) Handler(logs LogKeys, refused func(status int, err error)) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			http.Error(rw, "add-checkpoint takes POST", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxAddRequestBytes))
		var sig []byte
		if err != nil {
			err = fmt.Errorf("%w: body: %v", ErrBadRequest, err)
		} else {
			var req AddRequest
			if req, err = ParseAddRequest(body); err == nil {
				sig, err = w.AddCheckpoint(req, logs)
			}
		}
		status := Status(err)
		if err != nil && refused != nil {
			refused(status, err)
		}
		var conflict *ConflictError
		switch {
		case err == nil:
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			rw.WriteHeader(http.StatusOK)
			_, _ = rw.Write(sig)
		case errors.As(err, &conflict):
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			_, _ = fmt.Fprintf(rw, "%d\n", conflict.Size)
		case status == http.StatusInternalServerError:
			http.Error(rw, "internal error", status)
		default:
			http.Error(rw, err.Error(), status)
		}
	})
}
