package node

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
	"github.com/witnessnet/witnessnet/internal/verify/intoto/ed25519test"
)

// party is an in-toto key holder in node tests: a layout owner or a functionary.
type party struct {
	priv ed25519.PrivateKey
	pem  string
	key  *intoto.Key
}

func newParty(t testing.TB) *party {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	k, err := intoto.ParseKeyPEM([]byte(p), "")
	if err != nil {
		t.Fatal(err)
	}
	return &party{priv: priv, pem: p, key: k}
}

// signDSSE signs an in-toto document as a DSSE envelope by each party.
func signDSSE(doc any, by ...*party) []byte { return signDSSEWith(ed25519.Sign, doc, by...) }

// signDSSEWith is signDSSE with the signing function given.
func signDSSEWith(sign func(ed25519.PrivateKey, []byte) []byte, doc any, by ...*party) []byte {
	payload, _ := json.Marshal(doc)
	pae := verify.PAE(intoto.PayloadTypeInToto, payload)
	var sigs []map[string]string
	for _, p := range by {
		sigs = append(sigs, map[string]string{"keyid": p.key.KeyID, "sig": base64.StdEncoding.EncodeToString(sign(p.priv, pae))})
	}
	out, _ := json.Marshal(map[string]any{"payloadType": intoto.PayloadTypeInToto, "payload": base64.StdEncoding.EncodeToString(payload), "signatures": sigs})
	return out
}

// rebuildLayout has a "build" step by dev and a "rebuild" step needing 2 of 3 rebuilders.
func rebuildLayout(owner, dev *party, rebuilders []*party, expires time.Time) []byte {
	keys := map[string]any{dev.key.KeyID: dev.key.JSON()}
	var ids []string
	for _, r := range rebuilders {
		keys[r.key.KeyID] = r.key.JSON()
		ids = append(ids, r.key.KeyID)
	}
	doc := map[string]any{
		"_type": "layout", "expires": expires.UTC().Format(time.RFC3339), "readme": "", "keys": keys, "inspect": []any{},
		"steps": []any{
			map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{dev.key.KeyID},
				"expected_command": []string{}, "expected_materials": [][]string{}, "expected_products": [][]string{{"ALLOW", "*"}}},
			map[string]any{"_type": "step", "name": "rebuild", "threshold": 2, "pubkeys": ids,
				"expected_command": []string{}, "expected_materials": [][]string{},
				"expected_products": [][]string{{"MATCH", "*", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}}},
		},
	}
	return signDSSE(doc, owner)
}

func linkOf(step, productDigest string) map[string]any {
	return map[string]any{"_type": "link", "name": step, "command": []string{"make"}, "materials": map[string]any{},
		"products":   map[string]any{"app": map[string]string{"sha256": productDigest}},
		"byproducts": map[string]any{}, "environment": map[string]any{}}
}

func submitBody(env []byte, layout string, keys ...string) []byte {
	b, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(env), "layout": layout, "public_keys": keys})
	return b
}

const digestA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const digestB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func TestInTotoAdmissionAndCosigning(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.leader()
	owner, dev, stranger := newParty(t), newParty(t), newParty(t)
	rb := []*party{newParty(t), newParty(t), newParty(t)}
	layoutEnv := rebuildLayout(owner, dev, rb, time.Now().Add(time.Hour))
	code, out := post(t, tn.members[0].url(), submitBody(layoutEnv, "", owner.pem))
	if code != http.StatusCreated {
		t.Fatalf("register layout: %d %v", code, out)
	}
	layoutID := out["entry"].(string)
	expired := rebuildLayout(owner, dev, rb, time.Now().Add(-time.Minute))
	url := func(i int) string { return tn.members[i].url() }
	steps := []struct {
		name string
		node int
		body []byte
		want int
		code string
	}{
		{"expired layout", 0, submitBody(expired, "", owner.pem), 400, "layout_expired"},
		{"layout signed by a key not sent", 0, submitBody(layoutEnv, "", dev.pem), 400, "bad_signature"},
		{"link without its layout", 1, submitBody(signDSSE(linkOf("build", digestA), dev), ""), 400, "layout_required"},
		{"link of an unknown layout", 1, submitBody(signDSSE(linkOf("build", digestA), dev), "sha256:"+digestA), 404, "unknown_layout"},
		{"link of an unknown step", 1, submitBody(signDSSE(linkOf("deploy", digestA), dev), layoutID), 403, "unknown_step"},
		{"link by a stranger", 2, submitBody(signDSSE(linkOf("build", digestA), stranger), layoutID), 403, "unauthorized_signer"},
		{"link by the wrong functionary", 2, submitBody(signDSSE(linkOf("build", digestA), rb[0]), layoutID), 403, "unauthorized_signer"},
		{"build link", 1, submitBody(signDSSE(linkOf("build", digestA), dev), layoutID), 201, ""},
		{"first rebuilder", 1, submitBody(signDSSE(linkOf("rebuild", digestA), rb[0]), layoutID), 202, ""},
		{"first rebuilder again", 2, submitBody(signDSSE(linkOf("rebuild", digestA), rb[0]), layoutID), 202, ""},
		{"dissenting rebuilder", 0, submitBody(signDSSE(linkOf("rebuild", digestB), rb[2]), layoutID), 202, ""},
		{"second rebuilder through another node", 2, submitBody(signDSSE(linkOf("rebuild", digestA), rb[1]), layoutID), 201, ""},
		{"late rebuilder", 0, submitBody(signDSSE(linkOf("rebuild", digestA), rb[2]), layoutID), 200, ""},
	}
	var appended float64
	for _, s := range steps {
		code, out := post(t, url(s.node), s.body)
		if code != s.want || (s.code != "" && out["error"] != s.code) {
			t.Fatalf("%s: %d %v, want %d %s", s.name, code, out, s.want, s.code)
		}
		switch s.want {
		case 202:
			if out["threshold"].(float64) != 2 || out["signatures"].(float64) != 1 {
				t.Fatalf("%s: %v", s.name, out)
			}
		case 201:
			appended = out["index"].(float64)
		}
	}
	// The appended rebuild link carries both rebuilders' signatures over one payload.
	var entry struct {
		Envelope json.RawMessage `json:"envelope"`
	}
	getJSON(t, fmt.Sprintf("%s/v1/entries/%d", url(0), int(appended)), &entry)
	m, err := intoto.ParseMetadata(entry.Envelope)
	if err != nil || m.Kind != intoto.KindLink || len(m.Signers([]*intoto.Key{rb[0].key, rb[1].key, rb[2].key})) != 2 {
		t.Fatalf("appended rebuild link: %v", err)
	}
	// The dissent is still pending; the completed group is gone on every member once it has
	// applied the completion.
	var pending pendingResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		getJSON(t, url(1)+"/v1/pending?layout="+layoutID, &pending)
		if len(pending.Pending) == 1 || time.Now().After(deadline) {
			break
		}
	}
	if len(pending.Pending) != 1 || pending.Pending[0].Payload == "" || len(pending.Disagreements) != 0 {
		t.Fatalf("pending after completion: %+v", pending)
	}
	// Search finds the links of the rebuild step.
	var sr searchResponse
	getJSON(t, url(2)+"/v1/search?layout="+layoutID+"&step=rebuild", &sr)
	if len(sr.Indices) != 1 || float64(sr.Indices[0]) != appended {
		t.Fatalf("search step=rebuild: %+v (appended at %v)", sr, appended)
	}
	getJSON(t, url(2)+"/v1/search?key="+rb[1].key.KeyID, &sr)
	if len(sr.Indices) != 1 {
		t.Fatalf("search by key: %+v", sr)
	}
}

// A link recorded by in-toto's Python tool is admitted unchanged and served back byte for byte.
func TestReferenceToolLinkAdmitted(t *testing.T) {
	dir := filepath.Join("..", "verify", "intoto", "testdata", "python")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tn := newTestNet(t, 1, nil)
	tn.leader()
	code, out := post(t, tn.members[0].url(), submitBody(bytes.TrimSpace(read("root.layout")), "", string(read("owner.pub"))))
	if code != http.StatusCreated {
		t.Fatalf("layout: %d %v", code, out)
	}
	link := bytes.TrimSpace(read("build.4afea99c.link"))
	// Sent as the tool wrote it (json.Marshal would compact the envelope).
	body := fmt.Appendf(nil, `{"layout":%q,"envelope":%s}`, out["entry"], link)
	code, out = post(t, tn.members[0].url(), body)
	if code != http.StatusCreated {
		t.Fatalf("Python link: %d %v", code, out)
	}
	var got struct {
		Envelope json.RawMessage `json:"envelope"`
	}
	getJSON(t, fmt.Sprintf("%s/v1/entries/%v", tn.members[0].url(), out["index"]), &got)
	if !bytes.Equal(got.Envelope, link) {
		t.Fatal("the link came back changed")
	}
}

// A signature only RFC 8032's cofactored equation accepts (its R has a small-order component;
// only the key's holder can make one) is admitted alone and in a batch alike, except toward a
// threshold: a threshold step's link is checked under crypto/ed25519's rules, so a functionary
// cannot close a co-signing group with a signature consumers refuse.
func TestMixedOrderSignatures(t *testing.T) {
	tn := newTestNet(t, 1, nil)
	leader := tn.leader()
	owner, dev := newParty(t), newParty(t)
	rb := []*party{newParty(t), newParty(t), newParty(t)}
	code, out := post(t, leader.url(), submitBody(rebuildLayout(owner, dev, rb, time.Now().Add(time.Hour)), "", owner.pem))
	if code != http.StatusCreated {
		t.Fatalf("layout: %d %v", code, out)
	}
	layoutID := out["entry"].(string)
	mixed := func(doc any, by *party) []byte {
		return signDSSEWith(ed25519test.MixedOrderSignature, doc, by)
	}
	statement := func(n int) map[string]any {
		return map[string]any{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://witnessnet.dev/test",
			"subject": []any{map[string]any{"name": fmt.Sprint(n), "digest": map[string]string{"sha256": digestA}}}, "predicate": map[string]any{}}
	}
	cases := []struct {
		name   string
		body   func(n int) []byte
		status int
		code   string
	}{
		{"statement with its key", func(n int) []byte { return submitBody(mixed(statement(n), dev), "", dev.pem) }, 201, ""},
		{"link of a threshold-1 step", func(n int) []byte { return submitBody(mixed(linkOf("build", fmt.Sprintf("%064x", n)), dev), layoutID) }, 201, ""},
		{"link of a threshold-2 step", func(n int) []byte {
			return submitBody(mixed(linkOf("rebuild", fmt.Sprintf("%064x", n)), rb[0]), layoutID)
		}, 403, "unauthorized_signer"},
	}
	for i, c := range cases {
		code, out := post(t, leader.url(), c.body(2*i))
		if code != c.status || (c.code != "" && out["error"] != c.code) {
			t.Fatalf("%s, alone: %d %v, want %d %s", c.name, code, out, c.status, c.code)
		}
		code, ans, raw := postBatch(t, leader.url(), c.body(2*i+1), s0body(t))
		if code != http.StatusOK || len(ans.Results) != 2 {
			t.Fatalf("%s, in a batch: %d %s", c.name, code, raw)
		}
		if r := ans.Results[0]; r.Status != c.status || r.Error != c.code {
			t.Fatalf("%s, in a batch: %+v, want %d %s", c.name, r, c.status, c.code)
		}
		if ans.Results[1].Status != http.StatusCreated {
			t.Fatalf("%s: the valid entry beside it: %+v", c.name, ans.Results[1])
		}
	}
}

// s0body is a submission with an ordinary signature by a new key.
func s0body(t *testing.T) []byte { return newSigner(t).body([]byte(`{"n":"ordinary"}`)) }
