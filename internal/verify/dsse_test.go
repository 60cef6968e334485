package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"testing"
)

type testKey struct {
	pub  *PublicKey
	sign func(msg []byte) []byte
}

func newTestKey(t testing.TB, kind string) testKey {
	var pub crypto.PublicKey
	var sign func([]byte) []byte
	switch kind {
	case "ed25519":
		p, priv, _ := ed25519.GenerateKey(rand.Reader)
		pub, sign = p, func(m []byte) []byte { return ed25519.Sign(priv, m) }
	case "p256", "p384":
		curve := elliptic.P256()
		if kind == "p384" {
			curve = elliptic.P384()
		}
		priv, _ := ecdsa.GenerateKey(curve, rand.Reader)
		pub = &priv.PublicKey
		sign = func(m []byte) []byte {
			var h []byte
			if kind == "p384" {
				s := sha512.Sum384(m)
				h = s[:]
			} else {
				s := sha256.Sum256(m)
				h = s[:]
			}
			sig, _ := ecdsa.SignASN1(rand.Reader, priv, h)
			return sig
		}
	case "rsa-pss", "rsa-pkcs1":
		priv, _ := rsa.GenerateKey(rand.Reader, 2048)
		pub = &priv.PublicKey
		sign = func(m []byte) []byte {
			h := sha256.Sum256(m)
			if kind == "rsa-pss" {
				s, _ := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, h[:], nil)
				return s
			}
			s, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h[:])
			return s
		}
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pk, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return testKey{pub: pk, sign: sign}
}

func envelopeJSON(typ string, payload []byte, sigs ...[]byte) []byte {
	var ss []map[string]string
	for _, s := range sigs {
		ss = append(ss, map[string]string{"keyid": "k", "sig": base64.StdEncoding.EncodeToString(s)})
	}
	b, _ := json.Marshal(map[string]any{"payloadType": typ, "payload": base64.StdEncoding.EncodeToString(payload), "signatures": ss})
	return b
}

// TestPAE checks the pre-authentication encoding against the DSSE specification's example.
func TestPAE(t *testing.T) {
	for _, c := range []struct{ typ, payload, want string }{
		{"http://example.com/HelloWorld", "hello world", "DSSEv1 29 http://example.com/HelloWorld 11 hello world"},
		{"", "", "DSSEv1 0  0 "},
		{"t", string(make([]byte, 1234)), "DSSEv1 1 t 1234 " + string(make([]byte, 1234))},
	} {
		if got := string(PAE(c.typ, []byte(c.payload))); got != c.want {
			t.Errorf("PAE(%q, %d bytes) = %.60q, want %.60q", c.typ, len(c.payload), got, c.want)
		}
	}
}

func TestEnvelopeVerify(t *testing.T) {
	payload := []byte(`{"_type":"link"}`)
	const typ = "application/vnd.in-toto+json"
	for _, kind := range []string{"ed25519", "p256", "p384", "rsa-pss", "rsa-pkcs1"} {
		t.Run(kind, func(t *testing.T) {
			k, other := newTestKey(t, kind), newTestKey(t, "ed25519")
			e, err := ParseEnvelope(envelopeJSON(typ, payload, k.sign(PAE(typ, payload))))
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Verify([]*PublicKey{other.pub, k.pub})
			if err != nil || len(got) != 1 || !got[0].Equal(k.pub) {
				t.Fatalf("verify: %v %v", got, err)
			}
			if _, err := e.Verify([]*PublicKey{other.pub}); !errors.Is(err, ErrNoValidSignature) {
				t.Fatalf("wrong key: %v", err)
			}
			tampered, _ := ParseEnvelope(envelopeJSON(typ, append(payload, ' '), k.sign(PAE(typ, payload))))
			if _, err := tampered.Verify([]*PublicKey{k.pub}); !errors.Is(err, ErrNoValidSignature) {
				t.Fatalf("tampered payload: %v", err)
			}
		})
	}
}

func TestParseEnvelopeRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":      `{`,
		"unknown field": `{"payloadType":"t","payload":"","signatures":[],"x":1}`,
		"no type":       `{"payload":"","signatures":[]}`,
		"empty type":    `{"payloadType":"","payload":"","signatures":[]}`,
		"no payload":    `{"payloadType":"t","signatures":[]}`,
		"bad base64":    `{"payloadType":"t","payload":"!!","signatures":[]}`,
		"bad sig":       `{"payloadType":"t","payload":"","signatures":[{"keyid":"","sig":"!!"}]}`,
		"missing sig":   `{"payloadType":"t","payload":"","signatures":[{"keyid":""}]}`,
		"trailing":      `{"payloadType":"t","payload":"","signatures":[]} {}`,
		"trailing ]":    `{"payloadType":"t","payload":"","signatures":[]}]`,
		"array":         `[]`,
	} {
		if _, err := ParseEnvelope([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	e, err := ParseEnvelope([]byte(`{"payloadType":"t","payload":"","signatures":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Verify(nil); !errors.Is(err, ErrNoSignatures) {
		t.Fatalf("unsigned: %v", err)
	}
}

func TestParsePublicKeyRejects(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	for name, in := range map[string][]byte{
		"empty":     nil,
		"not pem":   []byte("hello"),
		"private":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}),
		"garbage":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}),
		"small rsa": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	} {
		if _, err := ParsePublicKey(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"aGk="}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnvelope(b)
		if err != nil {
			return
		}
		_, _ = e.Verify(nil)
	})
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParsePublicKey(b) })
}
