package client

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
	"github.com/witnessnet/witnessnet/internal/verify/intoto/ed25519test"
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

// The audit checks entries under the rules admission checked them by: a signature only the
// cofactored equation accepts passes on an entry with its key and on a link of a threshold-1
// step, and does not count toward a threshold.
func TestCheckEntryAdmissionRules(t *testing.T) {
	owner, dev, r1, r2 := newTestParty(t), newTestParty(t), newTestParty(t), newTestParty(t)
	layoutDoc, _ := json.Marshal(map[string]any{
		"_type": "layout", "expires": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "inspect": []any{},
		"keys": map[string]any{dev.key.KeyID: dev.key.JSON(), r1.key.KeyID: r1.key.JSON(), r2.key.KeyID: r2.key.JSON()},
		"steps": []any{
			map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{dev.key.KeyID},
				"expected_command": []string{}, "expected_materials": [][]string{}, "expected_products": [][]string{}},
			map[string]any{"_type": "step", "name": "rebuild", "threshold": 2, "pubkeys": []string{r1.key.KeyID, r2.key.KeyID},
				"expected_command": []string{}, "expected_materials": [][]string{}, "expected_products": [][]string{}}},
	})
	layoutEnv, err := SignDocument(layoutDoc, "dsse", intoto.PayloadTypeInToto, owner.priv, "")
	if err != nil {
		t.Fatal(err)
	}
	layouts := map[string]*intoto.Layout{}
	if err := checkEntry(nil, 0, withKeys(t, layoutEnv, owner), layouts); err != nil {
		t.Fatalf("layout: %v", err)
	}
	layoutID := ledger.IdentityOf(layoutEnv).String()
	// mixed signs a DSSE envelope by each party, the first with a mixed-order R.
	mixed := func(doc string, by ...testParty) []byte {
		pae := verify.PAE(intoto.PayloadTypeInToto, []byte(doc))
		var sigs []map[string]string
		for i, p := range by {
			sig := ed25519.Sign(p.priv, pae)
			if i == 0 {
				sig = ed25519test.MixedOrderSignature(p.priv, pae)
			}
			sigs = append(sigs, map[string]string{"keyid": p.key.KeyID, "sig": base64.StdEncoding.EncodeToString(sig)})
		}
		env, _ := json.Marshal(map[string]any{"payloadType": intoto.PayloadTypeInToto, "payload": base64.StdEncoding.EncodeToString([]byte(doc)), "signatures": sigs})
		return env
	}
	linkLeaf := func(env []byte) []byte {
		leaf, _, err := ledger.NewLeaf(env, layoutID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	const link = `{"_type":"link","name":"%s","command":[],"materials":{},"products":{},"byproducts":{},"environment":{}}`
	if err := checkEntry(nil, 1, withKeys(t, mixed(`{"n":1}`, dev), dev), layouts); err != nil {
		t.Fatalf("an entry with its key: %v", err)
	}
	if err := checkEntry(nil, 2, linkLeaf(mixed(fmt.Sprintf(link, "build"), dev)), layouts); err != nil {
		t.Fatalf("a link of a threshold-1 step: %v", err)
	}
	if err := checkEntry(nil, 3, linkLeaf(mixed(fmt.Sprintf(link, "rebuild"), r1, r2)), layouts); err == nil {
		t.Fatal("a signature consumers refuse counted toward a threshold")
	}
}
