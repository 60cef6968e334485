package node

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/witnessnet/witnessnet/internal/ledger"
)

// A member that forwards records straight to the leader, past its own admission, gets only what
// the leader would have admitted itself: a record whose signature does not verify, or whose
// search terms were made up, or whose leaf is spelled another way, is refused and never reaches
// the log; an honest record goes in, also with its leaf in the base64 form an earlier version of
// the member writes.
func TestLeaderReadmitsForwardedRecords(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	lead, liar := tn.follower()
	s := newSigner(t)
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`)
	// What an honest member's admission makes of this envelope.
	adm, err := lead.node.admitEnvelope(s.envelope(payload), "", []string{s.pem}, nil)
	if err != nil {
		t.Fatal(err)
	}
	honest := adm.rec
	forgedTerms := *honest
	forgedTerms.Terms = append(slices.Clone(honest.Terms), ledger.Term(ledger.TermLayout, "sha256:"+strings.Repeat("0", 64)))
	badSig := s.envelope([]byte(`{"other":1}`))
	badSig = bytes.Replace(badSig, []byte(`"sig":"`), []byte(`"sig":"AAAA`), 1)
	unsigned, err := newRecord(badSig, "", []string{s.pem}, honest.Terms)
	if err != nil {
		t.Fatal(err)
	}
	respaced := *honest
	respaced.Leaf = bytes.Replace(honest.Leaf, []byte(`"envelope":`), []byte(`"envelope": `), 1)
	adm, err = lead.node.admitEnvelope(s.envelope([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"y","predicate":{}}`)), "", []string{s.pem}, nil)
	if err != nil {
		t.Fatal(err)
	}
	older := *adm.rec
	leaf, err := ledger.ParseLeaf(older.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	if older.Leaf, err = json.Marshal(leaf); err != nil || bytes.Equal(older.Leaf, adm.rec.Leaf) {
		t.Fatalf("the base64 form: %s, %v", older.Leaf, err)
	}
	var recs [][]byte
	for _, r := range []*ledger.Record{unsigned, &forgedTerms, &respaced, honest, &older} {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b)
	}
	body := encodeBatch(ledger.KindEntries, recs)
	code, raw := memberCall(t, lead, "/v1/internal/propose", liar, liar.witPriv, forwardDomain, body)
	var out []forwardResult
	if err := json.Unmarshal(raw, &out); err != nil || code != http.StatusOK || len(out) != 5 {
		t.Fatalf("forward: %d %v %+v", code, err, out)
	}
	for i, what := range []string{"a bad signature", "made-up terms", "a respaced leaf"} {
		if !strings.Contains(out[i].Error, "refused by the leader") {
			t.Errorf("%s: %+v", what, out[i])
		}
	}
	for i, what := range map[int]string{3: "the honest record", 4: "the honest record in the base64 form"} {
		if out[i].Error != "" {
			t.Fatalf("%s: %+v", what, out[i])
		}
	}
	if size := lead.node.ledger.Size(); size != 2 {
		t.Fatalf("log size %d, want 2 (the honest records only)", size)
	}
}
