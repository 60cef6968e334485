package intoto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
)

func replaceOnce(t testing.TB, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("vector lacks %q", old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// functionary is a test signer.
type functionary struct {
	priv ed25519.PrivateKey
	key  *Key
	pem  string
}

func newFunctionary(t testing.TB) *functionary {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	k, err := ParseKeyPEM([]byte(p), "")
	if err != nil {
		t.Fatal(err)
	}
	return &functionary{priv: priv, key: k, pem: p}
}

func testPEM(t testing.TB) string { return newFunctionary(t).pem }

// metablock signs doc (a JSON object) as a classic metablock by each functionary.
func metablock(t testing.TB, doc any, by ...*functionary) []byte {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := canonicalize(raw)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []map[string]string
	for _, f := range by {
		sigs = append(sigs, map[string]string{"keyid": f.key.KeyID, "sig": hex.EncodeToString(ed25519.Sign(f.priv, c))})
	}
	out, _ := json.Marshal(map[string]any{"signed": json.RawMessage(raw), "signatures": sigs})
	return out
}

// dsse signs doc as a DSSE envelope by each functionary.
func dsse(t testing.TB, doc any, by ...*functionary) []byte {
	t.Helper()
	payload, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	pae := []byte("DSSEv1 " + itoa(len(PayloadTypeInToto)) + " " + PayloadTypeInToto + " " + itoa(len(payload)) + " " + string(payload))
	var sigs []map[string]string
	for _, f := range by {
		sigs = append(sigs, map[string]string{"keyid": f.key.KeyID, "sig": base64.StdEncoding.EncodeToString(ed25519.Sign(f.priv, pae))})
	}
	out, _ := json.Marshal(map[string]any{"payloadType": PayloadTypeInToto, "payload": base64.StdEncoding.EncodeToString(payload), "signatures": sigs})
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func mustParse(t testing.TB, raw []byte) *Metadata {
	t.Helper()
	m, err := ParseMetadata(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
