package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// Sentinel errors for keys and signatures.
var (
	// ErrMalformedKey means a public key does not parse.
	ErrMalformedKey = errors.New("malformed public key")
	// ErrUnsupportedKey means the key type is not one witnessnet verifies.
	ErrUnsupportedKey = errors.New("unsupported key type")
)

// PublicKey is a verification key: Ed25519, ECDSA P-256/P-384 or RSA.
type PublicKey struct {
	// KeyID identifies the key: hex SHA-256 of its PKIX DER encoding.
	KeyID string
	// Type is "ed25519", "ecdsa" or "rsa".
	Type string
	Key  crypto.PublicKey
	der  []byte
}

// ParsePublicKey parses a PEM "PUBLIC KEY" block (PKIX).
func ParsePublicKey(data []byte) (*PublicKey, error) {
	block, rest := pem.Decode(bytes.TrimSpace(data))
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrMalformedKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: data after the PEM block", ErrMalformedKey)
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: PEM block %q, want PUBLIC KEY", ErrMalformedKey, block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedKey, err)
	}
	return newPublicKey(k, block.Bytes)
}

func newPublicKey(k crypto.PublicKey, der []byte) (*PublicKey, error) {
	pk := &PublicKey{Key: k, der: der}
	switch k := k.(type) {
	case ed25519.PublicKey:
		pk.Type = "ed25519"
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		pk.Type = "ecdsa"
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: RSA key of %d bits", ErrUnsupportedKey, k.N.BitLen())
		}
		pk.Type = "rsa"
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, k)
	}
	h := sha256.Sum256(der)
	pk.KeyID = hex.EncodeToString(h[:])
	return pk, nil
}

// Equal reports whether two keys are the same key material, whatever their key IDs.
func (k *PublicKey) Equal(o *PublicKey) bool {
	return k != nil && o != nil && bytes.Equal(k.der, o.der)
}

// VerifySignature checks sig over msg: Ed25519 over the message; ECDSA (ASN.1 DER) over SHA-256
// (P-256) or SHA-384 (P-384); RSA PSS or PKCS #1 v1.5 over SHA-256.
func (k *PublicKey) VerifySignature(msg, sig []byte) bool {
	switch key := k.Key.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(key, msg, sig)
	case *ecdsa.PublicKey:
		if key.Curve == elliptic.P384() {
			h := sha512.Sum384(msg)
			return ecdsa.VerifyASN1(key, h[:], sig)
		}
		h := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(key, h[:], sig)
	case *rsa.PublicKey:
		h := sha256.Sum256(msg)
		if rsa.VerifyPSS(key, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
			return true
		}
		return rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sig) == nil
	}
	return false
}
