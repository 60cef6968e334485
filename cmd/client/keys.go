package main

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

func runKeygen(e *env, args []string) error {
	fs := e.flags("keygen")
	out := fs.String("out", "", "write PREFIX.key (private, PKCS #8) and PREFIX.pub (public, PKIX)")
	typ := fs.String("type", "ed25519", "ed25519, ecdsa-p256, ecdsa-p384 or rsa")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	priv, err := generate(*typ)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.(crypto.Signer).Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := os.WriteFile(*out+".pub", pubPEM, 0o644); err != nil {
		return err
	}
	pk, err := intoto.ParseKeyPEM(pubPEM, "")
	if err != nil {
		return err
	}
	e.result(map[string]string{"private": *out + ".key", "public": *out + ".pub", "keyid": pk.KeyID, "type": *typ},
		fmt.Sprintf("wrote %s.key and %s.pub\nkey id %s\n", *out, *out, pk.KeyID))
	return nil
}

func generate(typ string) (crypto.PrivateKey, error) {
	switch typ {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ecdsa-p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, usagef("--type %q: want ed25519, ecdsa-p256, ecdsa-p384 or rsa", typ)
}

// loadSigner reads a PKCS #8 private key and returns it with its key ID as the in-toto tools
// compute it (SHA-256 of the securesystemslib form of the public key).
func loadSigner(path string) (crypto.Signer, string, error) {
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

// signBytes signs what an envelope's signatures cover (DSSE's PAE, or a metablock's canonical
// JSON) under the key's in-toto scheme: Ed25519, ECDSA over SHA-256 (P-256) or SHA-384 (P-384),
// RSA-PSS over SHA-256 with a salt as long as the hash.
func signBytes(s crypto.Signer, msg []byte) ([]byte, error) {
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

func runSign(e *env, args []string) error {
	fs := e.flags("sign")
	keyPath := fs.String("key", "", "private key (PKCS #8 PEM, from client keygen)")
	format := fs.String("format", "dsse", "envelope: dsse, or metablock (in-toto's classic {signed, signatures})")
	typ := fs.String("payload-type", intoto.PayloadTypeInToto, "DSSE payload type")
	out := fs.String("out", "", "write the envelope here (default: standard output)")
	appendTo := fs.String("append", "", "add a signature to this existing envelope (either format) instead of signing DOCUMENT")
	if err := parse(fs, args, -1); err != nil {
		return err
	}
	if *keyPath == "" {
		return usagef("--key is required")
	}
	signer, keyID, err := loadSigner(*keyPath)
	if err != nil {
		return err
	}
	var signed []byte
	switch {
	case *appendTo != "" && fs.NArg() == 0:
		b, err := os.ReadFile(*appendTo)
		if err != nil {
			return err
		}
		if signed, err = cosignDocument(b, signer, keyID); err != nil {
			return err
		}
	case *appendTo == "" && fs.NArg() == 1:
		doc, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		if signed, err = signDocument(doc, *format, *typ, signer, keyID); err != nil {
			return err
		}
	default:
		return usagef("give either DOCUMENT or --append ENVELOPE")
	}
	m, err := intoto.ParseMetadata(signed)
	if err != nil {
		return err
	}
	signed = append(signed, '\n')
	if *out == "" {
		_, err = e.stdout.Write(signed)
		return err
	}
	if err := os.WriteFile(*out, signed, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s (%s, %d signature(s))\n", *out, m.Kind, len(m.Signatures))
	return nil
}

// signDocument wraps a document in a signed envelope of the given format.
func signDocument(doc []byte, format, payloadType string, s crypto.Signer, keyID string) ([]byte, error) {
	doc = bytes.TrimSpace(doc)
	switch format {
	case "dsse":
		sig, err := signBytes(s, verify.PAE(payloadType, doc))
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
		sig, err := signBytes(s, c)
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"signed": json.RawMessage(doc),
			"signatures": []map[string]string{{"keyid": keyID, "sig": hex.EncodeToString(sig)}}})
	}
	return nil, usagef("--format %q: want dsse or metablock", format)
}

// cosignDocument adds this key's signature over the same signed bytes.
func cosignDocument(raw []byte, s crypto.Signer, keyID string) ([]byte, error) {
	m, err := intoto.ParseMetadata(raw)
	if err != nil {
		return nil, err
	}
	sig, err := signBytes(s, m.SignedBytes())
	if err != nil {
		return nil, err
	}
	return intoto.AddSignature(raw, keyID, sig)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
