package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/witnessnet/witnessnet/internal/verify"
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
	pk, err := verify.ParsePublicKey(pubPEM)
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

// loadSigner reads a PKCS #8 private key and returns it with its key ID.
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
	h := sha256.Sum256(der)
	return s, fmt.Sprintf("%x", h), nil
}

// signPAE signs DSSE's PAE the way verify checks it: Ed25519 over the message, ECDSA over
// SHA-256 (P-256) or SHA-384 (P-384), RSA-PSS over SHA-256.
func signPAE(s crypto.Signer, msg []byte) ([]byte, error) {
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
		return rsa.SignPSS(rand.Reader, k, crypto.SHA256, d[:], nil)
	}
	return nil, fmt.Errorf("unsupported key %T", s)
}

type wireSig struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

type wireEnvelope struct {
	PayloadType string    `json:"payloadType"`
	Payload     string    `json:"payload"`
	Signatures  []wireSig `json:"signatures"`
}

func runSign(e *env, args []string) error {
	fs := e.flags("sign")
	keyPath := fs.String("key", "", "private key (PKCS #8 PEM, from client keygen)")
	typ := fs.String("payload-type", "application/vnd.in-toto+json", "DSSE payload type")
	out := fs.String("out", "", "write the envelope here (default: standard output)")
	appendTo := fs.String("append", "", "add a signature to this existing envelope instead of signing PAYLOAD")
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
	var env wireEnvelope
	switch {
	case *appendTo != "" && fs.NArg() == 0:
		b, err := os.ReadFile(*appendTo)
		if err != nil {
			return err
		}
		if _, err := verify.ParseEnvelope(b); err != nil {
			return err
		}
		if err := json.Unmarshal(b, &env); err != nil {
			return err
		}
	case *appendTo == "" && fs.NArg() == 1:
		payload, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		env = wireEnvelope{PayloadType: *typ, Payload: base64.StdEncoding.EncodeToString(payload)}
	default:
		return usagef("give either PAYLOAD or --append ENVELOPE")
	}
	parsed, err := verify.ParseEnvelope(mustJSON(env))
	if err != nil {
		return err
	}
	sig, err := signPAE(signer, verify.PAE(parsed.PayloadType, parsed.Payload))
	if err != nil {
		return err
	}
	env.Signatures = append(env.Signatures, wireSig{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(sig)})
	b := append(mustJSON(env), '\n')
	if *out == "" {
		_, err = e.stdout.Write(b)
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s (%d signature(s))\n", *out, len(env.Signatures))
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
