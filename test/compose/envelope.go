package compose

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
)

// Signer makes DSSE envelopes with one ed25519 key, in process.
type Signer struct {
	priv  ed25519.PrivateKey
	keyID string
	pem   string
}

// NewSigner makes a fresh key.
func NewSigner() (*Signer, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Signer{
		priv:  priv,
		keyID: hex.EncodeToString(sum[:]),
		pem:   string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}, nil
}

// PublicKeyPEM is the key as the node API takes it in public_keys.
func (s *Signer) PublicKeyPEM() string { return s.pem }

const payloadType = "application/vnd.in-toto+json"

// pae is DSSE's pre-authentication encoding.
func pae(typ string, body []byte) []byte {
	b := []byte("DSSEv1 " + strconv.Itoa(len(typ)) + " " + typ + " " + strconv.Itoa(len(body)) + " ")
	return append(b, body...)
}

type dsseSignature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

type dsseEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     []byte          `json:"payload"`
	Signatures  []dsseSignature `json:"signatures"`
}

// Envelope signs an in-toto statement naming subject and returns the envelope's bytes.
func (s *Signer) Envelope(subject string) ([]byte, error) {
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []map[string]any{{"name": subject, "digest": map[string]string{"sha256": digest(subject)}}},
		"predicateType": "https://witnessnet.dev/compose-workload/v1",
		"predicate":     map[string]string{"subject": subject},
	})
	if err != nil {
		return nil, err
	}
	env := dsseEnvelope{PayloadType: payloadType, Payload: stmt,
		Signatures: []dsseSignature{{KeyID: s.keyID, Sig: ed25519.Sign(s.priv, pae(payloadType, stmt))}}}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return b, nil
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
