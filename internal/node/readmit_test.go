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
// search terms were made up, is refused and never reaches the log; an honest record goes in.
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
	var recs [][]byte
	for _, r := range []*ledger.Record{unsigned, &forgedTerms, honest} {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b)
	}
	body := encodeBatch(ledger.KindEntries, recs)
	code, raw := memberCall(t, lead, "/v1/internal/propose", liar, liar.witPriv, forwardDomain, body)
	var out []forwardResult
	if err := json.Unmarshal(raw, &out); err != nil || code != http.StatusOK || len(out) != 3 {
		t.Fatalf("forward: %d %v %+v", code, err, out)
	}
	for i, what := range []string{"a bad signature", "made-up terms"} {
		if !strings.Contains(out[i].Error, "refused by the leader") {
			t.Errorf("%s: %+v", what, out[i])
		}
	}
	if out[2].Error != "" {
		t.Fatalf("the honest record: %+v", out[2])
	}
	if size := lead.node.ledger.Size(); size != 1 {
		t.Fatalf("log size %d, want 1 (the honest record only)", size)
	}
}
