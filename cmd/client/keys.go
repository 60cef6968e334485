package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/witnessnet/witnessnet/internal/client"
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
	signer, keyID, err := client.LoadSigner(*keyPath)
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
		if signed, err = client.CosignDocument(b, signer, keyID); err != nil {
			return err
		}
	case *appendTo == "" && fs.NArg() == 1:
		doc, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		if signed, err = client.SignDocument(doc, *format, *typ, signer, keyID); err != nil {
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

// runKey prints a public key the way a layout lists it: its in-toto key ID and its
// securesystemslib JSON form ("keys": {"<keyid>": {...}}).
func runKey(e *env, args []string) error {
	fs := e.flags("key")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	k, err := intoto.ParseKeyPEM(b, "")
	if err != nil {
		return err
	}
	out, _ := json.Marshal(map[string]any{k.KeyID: k.JSON()})
	e.result(map[string]any{"keyid": k.KeyID, "key": k.JSON()}, string(out)+"\n")
	return nil
}
