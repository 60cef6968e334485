package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Sentinel errors for envelopes.
var (
	// ErrMalformed means an envelope or document does not parse.
	ErrMalformed = errors.New("malformed")
	// ErrNoSignatures means an envelope carries no signature.
	ErrNoSignatures = errors.New("no signatures")
	// ErrNoValidSignature means no signature verifies under any of the given keys.
	ErrNoValidSignature = errors.New("no valid signature")
)

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string
	Payload     []byte
	Signatures  []Signature
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string
	Sig   []byte
}

// WireEnvelope is a DSSE envelope as JSON decodes it, before its fields are checked.
type WireEnvelope struct {
	PayloadType *string         `json:"payloadType"`
	Payload     *string         `json:"payload"`
	Signatures  []WireSignature `json:"signatures"`
}

// WireSignature is one signature of a WireEnvelope.
type WireSignature struct {
	KeyID string  `json:"keyid"`
	Sig   *string `json:"sig"`
}

// ParseEnvelope parses a DSSE envelope strictly: exactly one JSON object with payloadType,
// payload (standard or URL-safe base64) and signatures; unknown fields are refused.
func ParseEnvelope(data []byte) (*Envelope, error) {
	var w WireEnvelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: envelope: trailing data", ErrMalformed)
	}
	return w.Envelope()
}

// Envelope checks the decoded fields and decodes the payload and signatures: what ParseEnvelope
// does once the JSON is decoded, for a caller that decoded it already.
func (w *WireEnvelope) Envelope() (*Envelope, error) {
	if w.PayloadType == nil || *w.PayloadType == "" {
		return nil, fmt.Errorf("%w: envelope: missing payloadType", ErrMalformed)
	}
	if w.Payload == nil {
		return nil, fmt.Errorf("%w: envelope: missing payload", ErrMalformed)
	}
	payload, err := decodeB64(*w.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: envelope payload: %v", ErrMalformed, err)
	}
	e := &Envelope{PayloadType: *w.PayloadType, Payload: payload}
	for i, s := range w.Signatures {
		if s.Sig == nil {
			return nil, fmt.Errorf("%w: signature %d: missing sig", ErrMalformed, i)
		}
		sig, err := decodeB64(*s.Sig)
		if err != nil || len(sig) == 0 {
			return nil, fmt.Errorf("%w: signature %d: bad sig encoding", ErrMalformed, i)
		}
		e.Signatures = append(e.Signatures, Signature{KeyID: s.KeyID, Sig: sig})
	}
	return e, nil
}

func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// PAE is DSSE's pre-authentication encoding, the bytes a signature covers.
func PAE(payloadType string, payload []byte) []byte {
	// "DSSEv1", four spaces, two lengths of at most 20 digits, the type and the payload.
	b := make([]byte, 0, len("DSSEv1")+4+2*20+len(payloadType)+len(payload))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(append(append(b, ' '), payloadType...), ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	return append(append(b, ' '), payload...)
}

// Verify returns the distinct keys (by key material) that made a valid signature over the
// envelope, or ErrNoSignatures / ErrNoValidSignature.
func (e *Envelope) Verify(keys []*PublicKey) ([]*PublicKey, error) {
	if len(e.Signatures) == 0 {
		return nil, ErrNoSignatures
	}
	msg := PAE(e.PayloadType, e.Payload)
	var out []*PublicKey
	for _, s := range e.Signatures {
		for _, k := range keys {
			if !k.VerifySignature(msg, s.Sig) {
				continue
			}
			dup := false
			for _, o := range out {
				dup = dup || o.Equal(k)
			}
			if !dup {
				out = append(out, k)
			}
			break
		}
	}
	if len(out) == 0 {
		return nil, ErrNoValidSignature
	}
	return out, nil
}
