package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// LoadSigner reads a PKCS #8 private key and returns it with its key ID as the in-toto tools
// compute it (SHA-256 of the securesystemslib form of the public key).
func LoadSigner(path string) (crypto.Signer, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, "", fmt.Errorf("%s: want a PEM PRIVATE KEY (PKCS #8)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("%s: unsupported key", path)
	}
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		return nil, "", err
	}
	pub, err := intoto.ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "")
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return s, pub.KeyID, nil
}

// SignBytes signs what an envelope's signatures cover (DSSE's PAE, or a metablock's canonical
// JSON) under the key's in-toto scheme: Ed25519, ECDSA over SHA-256 (P-256) or SHA-384 (P-384),
// RSA-PSS over SHA-256 with a salt as long as the hash.
func SignBytes(s crypto.Signer, msg []byte) ([]byte, error) {
	switch k := s.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		h := crypto.SHA256
		if k.Curve == elliptic.P384() {
			h = crypto.SHA384
		}
		d := h.New()
		d.Write(msg)
		return ecdsa.SignASN1(rand.Reader, k, d.Sum(nil))
	case *rsa.PrivateKey:
		d := sha256.Sum256(msg)
		return rsa.SignPSS(rand.Reader, k, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return nil, fmt.Errorf("unsupported key %T", s)
}

// SignDocument wraps a document in a signed envelope of the given format.
func SignDocument(doc []byte, format, payloadType string, s crypto.Signer, keyID string) ([]byte, error) {
	doc = bytes.TrimSpace(doc)
	switch format {
	case "dsse":
		sig, err := SignBytes(s, verify.PAE(payloadType, doc))
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"payloadType": payloadType, "payload": base64.StdEncoding.EncodeToString(doc),
			"signatures": []map[string]string{{"keyid": keyID, "sig": base64.StdEncoding.EncodeToString(sig)}}})
	case "metablock":
		if !json.Valid(doc) {
			return nil, fmt.Errorf("a metablock signs a JSON document; this is not JSON")
		}
		c, err := intoto.Canonicalize(doc)
		if err != nil {
			return nil, err
		}
		sig, err := SignBytes(s, c)
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"signed": json.RawMessage(doc),
			"signatures": []map[string]string{{"keyid": keyID, "sig": hex.EncodeToString(sig)}}})
	}
	return nil, usagef("--format %q: want dsse or metablock", format)
}

// CosignDocument adds this key's signature over the same signed bytes.
func CosignDocument(raw []byte, s crypto.Signer, keyID string) ([]byte, error) {
	m, err := intoto.ParseMetadata(raw)
	if err != nil {
		return nil, err
	}
	sig, err := SignBytes(s, m.SignedBytes())
	if err != nil {
		return nil, err
	}
	return intoto.AddSignature(raw, keyID, sig)
}
