package node

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/witness"
)

// waitCheckpoint polls a node's /checkpoint until it covers at least size, verifies it with the
// standard note implementation against every member's keys, and returns it with the cosigners.
func (tn *testNet) waitCheckpoint(m *testMember, size uint64) (witness.Checkpoint, []string) {
	tn.t.Helper()
	var vs []note.Verifier
	for _, o := range tn.members {
		lv, _ := note.NewVerifier(o.logVkey)
		wv, _ := fnote.NewVerifierForCosignatureV1(o.witVkey)
		vs = append(vs, lv, wv)
	}
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.url() + "/checkpoint")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if resp.StatusCode == http.StatusOK {
				n, err := note.Open(b, note.VerifierList(vs...))
				if err != nil {
					tn.t.Fatalf("checkpoint from %s does not verify: %v\n%s", m.name, err, b)
				}
				cp, err := witness.ParseCheckpoint(n.Text)
				if err != nil {
					tn.t.Fatal(err)
				}
				var names []string
				logSigs := 0
				for _, s := range n.Sigs {
					if s.Name == testOrigin {
						logSigs++
					} else {
						names = append(names, s.Name)
					}
				}
				if logSigs == 0 || len(names) < tn.quorum {
					tn.t.Fatalf("checkpoint with %d log signatures and cosigners %v", logSigs, names)
				}
				if cp.Size >= size {
					return cp, names
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, o := range tn.members {
		if o.node != nil {
			tn.t.Logf("%s: %+v boundary %d", o.name, o.node.status(), o.node.ledger.LastBoundary())
		}
	}
	tn.t.Fatalf("%s: no checkpoint of size >= %d; last answer: %s", m.name, size, last)
	return witness.Checkpoint{}, nil
}

func TestSubmitForwardCheckpointProve(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.leader()
	s := newSigner(t)
	const total = 120
	idx := make([]uint64, total)
	var wg sync.WaitGroup
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := tn.members[i%3]
			code, out := post(t, m.url(), s.body(fmt.Appendf(nil, `{"n":%d}`, i)))
			if code != http.StatusCreated {
				t.Errorf("submit %d to %s: %d %v", i, m.name, code, out)
				return
			}
			idx[i] = uint64(out["index"].(float64))
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[uint64]bool{}
	for _, v := range idx {
		if seen[v] || v >= total {
			t.Fatalf("index %d assigned twice or out of range", v)
		}
		seen[v] = true
	}
	// A resubmission answers 200 with the original index, on any node.
	code, out := post(t, tn.members[2].url(), s.body([]byte(`{"n":7}`)))
	if code != http.StatusOK || uint64(out["index"].(float64)) != idx[7] {
		t.Fatalf("resubmission: %d %v (want index %d)", code, out, idx[7])
	}
	for _, m := range tn.members {
		cp, names := tn.waitCheckpoint(m, total)
		// Prove entry 7's inclusion against this node's checkpoint.
		var entry struct {
			Leaf string `json:"leaf"`
		}
		if c := getJSON(t, fmt.Sprintf("%s/v1/entries/%d", m.url(), idx[7]), &entry); c != 200 {
			t.Fatalf("get entry: %d", c)
		}
		leaf, _ := base64.StdEncoding.DecodeString(entry.Leaf)
		var p struct{ Hashes [][]byte }
		if c := getJSON(t, fmt.Sprintf("%s/v1/proof/inclusion?index=%d&size=%d", m.url(), idx[7], cp.Size), &p); c != 200 {
			t.Fatalf("inclusion proof: %d", c)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx[7], cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), p.Hashes, cp.Root); err != nil {
			t.Fatalf("%s: inclusion: %v (cosigners %v)", m.name, err, names)
		}
		if !bytes.HasSuffix(leaf, append([]byte(`"envelope":`+string(s.envelope([]byte(`{"n":7}`)))), '}')) {
			t.Fatalf("leaf %s does not carry the envelope as sent", leaf)
		}
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.leader()
	s, other := newSigner(t), newSigner(t)
	m := tn.members[0]
	env := string(s.envelope([]byte(`{"a":1}`)))
	big := strings.Repeat("x", 5<<20)
	manyKeys := `"` + strings.TrimSuffix(strings.Repeat(jsonEscape(s.pem)+`","`, 65), `","`) + `"`
	manySigs := `{"payloadType":"t","payload":"aGk=","signatures":[` + strings.TrimSuffix(strings.Repeat(`{"keyid":"","sig":"AAAA"},`, 65), ",") + `]}`
	for _, tc := range []struct {
		name string
		body string
		code int
	}{
		{"not json", `{`, 400},
		{"unknown field", `{"envelope":` + env + `,"x":1}`, 400},
		{"trailing bracket", `{"envelope":` + env + `,"public_keys":["` + jsonEscape(s.pem) + `"]}]`, 400},
		{"no envelope", `{"public_keys":["` + jsonEscape(s.pem) + `"]}`, 400},
		{"no keys", `{"envelope":` + env + `}`, 400},
		{"wrong key", `{"envelope":` + env + `,"public_keys":["` + jsonEscape(other.pem) + `"]}`, 400},
		{"bad key", `{"envelope":` + env + `,"public_keys":["nope"]}`, 400},
		{"unsigned", `{"envelope":{"payloadType":"t","payload":"aGk=","signatures":[]},"public_keys":["` + jsonEscape(s.pem) + `"]}`, 400},
		{"malformed envelope", `{"envelope":{"payload":1},"public_keys":["` + jsonEscape(s.pem) + `"]}`, 400},
		{"bad layout", `{"envelope":` + env + `,"layout":"md5:00","public_keys":["` + jsonEscape(s.pem) + `"]}`, 400},
		{"oversized", `{"envelope":"` + big + `"}`, 413},
		{"65 public keys", `{"envelope":` + env + `,"public_keys":[` + manyKeys + `]}`, 400},
		{"65 signatures", `{"envelope":` + manySigs + `,"public_keys":["` + jsonEscape(s.pem) + `"]}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(m.url()+"/v1/entries", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !bytes.Contains(b, []byte(`"error"`)) {
				t.Fatalf("got %d %s, want %d with a JSON error", resp.StatusCode, b, tc.code)
			}
		})
	}
	for _, mm := range tn.members {
		if mm.node.ledger.Size() != 0 {
			t.Fatalf("%s: bad input changed the log (size %d)", mm.name, mm.node.ledger.Size())
		}
	}
}

func jsonEscape(s string) string { return strings.ReplaceAll(s, "\n", `\n`) }

// An envelope is served back byte for byte, whitespace and all: its identity is the hash of the
// bytes its signer sent.
func TestEntryServedByteForByte(t *testing.T) {
	tn := newTestNet(t, 1, nil)
	tn.leader()
	s := newSigner(t)
	env := strings.Replace(string(s.envelope([]byte(`{"html":"<a&b>"}`))), `,"payload":`, ` ,  "payload" : `, 1)
	body := `{"envelope":` + env + `,"public_keys":["` + jsonEscape(s.pem) + `"]}`
	code, out := post(t, tn.members[0].url(), []byte(body))
	if code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, out)
	}
	var got struct {
		Entry    string          `json:"entry"`
		Envelope json.RawMessage `json:"envelope"`
	}
	getJSON(t, fmt.Sprintf("%s/v1/entries/%v", tn.members[0].url(), out["index"]), &got)
	if string(got.Envelope) != env || got.Entry != out["entry"] {
		t.Fatalf("served envelope differs:\n%s\n%s", got.Envelope, env)
	}
}
