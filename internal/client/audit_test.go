package client

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

type testParty struct {
	priv ed25519.PrivateKey
	key  *intoto.Key
}

func newTestParty(t *testing.T) testParty {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	k, err := intoto.ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "")
	if err != nil {
		t.Fatal(err)
	}
	return testParty{priv: priv, key: k}
}

// The full audit re-checks what admission checked: a link of a threshold step in the log with
// fewer distinct functionaries than the threshold (a member that put it there past admission)
// fails the audit; with the threshold met it passes.
func TestCheckEntryThreshold(t *testing.T) {
	owner, r1, r2 := newTestParty(t), newTestParty(t), newTestParty(t)
	layoutDoc, _ := json.Marshal(map[string]any{
		"_type": "layout", "expires": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "inspect": []any{},
		"keys": map[string]any{r1.key.KeyID: r1.key.JSON(), r2.key.KeyID: r2.key.JSON()},
		"steps": []any{map[string]any{"_type": "step", "name": "rebuild", "threshold": 2, "pubkeys": []string{r1.key.KeyID, r2.key.KeyID},
			"expected_command": []string{}, "expected_materials": [][]string{}, "expected_products": [][]string{}}},
	})
	layoutEnv, err := SignDocument(layoutDoc, "dsse", intoto.PayloadTypeInToto, owner.priv, "")
	if err != nil {
		t.Fatal(err)
	}
	layouts := map[string]*intoto.Layout{}
	layoutLeaf := withKeys(t, layoutEnv, owner)
	if err := checkEntry(nil, 0, layoutLeaf, layouts); err != nil {
		t.Fatalf("layout: %v", err)
	}
	layoutID := ledger.IdentityOf(layoutEnv).String()

	linkDoc := []byte(`{"_type":"link","name":"rebuild","command":[],"materials":{},"products":{},"byproducts":{},"environment":{}}`)
	one, err := SignDocument(linkDoc, "metablock", "", r1.priv, r1.key.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, err := ledger.NewLeaf(one, layoutID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkEntry(nil, 1, leaf, layouts); err == nil || !strings.Contains(err.Error(), "threshold 2") {
		t.Fatalf("a threshold-2 link with one signature: %v", err)
	}
	two, err := CosignDocument(one, r2.priv, r2.key.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if leaf, _, err = ledger.NewLeaf(two, layoutID, nil); err != nil {
		t.Fatal(err)
	}
	if err := checkEntry(nil, 2, leaf, layouts); err != nil {
		t.Fatalf("a threshold-2 link with two signatures: %v", err)
	}
	// The same functionary twice, under another key ID, is still one functionary.
	again, err := CosignDocument(one, r1.priv, "another-id")
	if err != nil {
		t.Fatal(err)
	}
	if leaf, _, err = ledger.NewLeaf(again, layoutID, nil); err != nil {
		t.Fatal(err)
	}
	if err := checkEntry(nil, 3, leaf, layouts); err == nil {
		t.Fatal("one functionary signing twice met a threshold of 2")
	}
}

// withKeys is the leaf of an envelope submitted with the signer's public key.
func withKeys(t *testing.T, env []byte, p testParty) []byte {
	t.Helper()
	der, _ := x509.MarshalPKIXPublicKey(p.priv.Public())
	leaf, _, err := ledger.NewLeaf(env, "", []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
