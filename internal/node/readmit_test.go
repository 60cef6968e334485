package node

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
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
	lead := tn.leader()
	var liar *testMember
	for _, m := range tn.members {
		if m != lead {
			liar = m
			break
		}
	}
	s := newSigner(t)
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`)
	// What an honest member's admission makes of this envelope.
	adm, err := lead.node.admitEnvelope(s.envelope(payload), "", []string{s.pem})
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
	req, _ := http.NewRequest(http.MethodPost, lead.url()+"/v1/internal/propose", bytes.NewReader(body))
	req.Header.Set("Witnessnet-Member", liar.name)
	req.Header.Set("Witnessnet-Signature", base64.StdEncoding.EncodeToString(ed25519.Sign(liar.witPriv, memberMessage(forwardDomain, body))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []forwardResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out) != 3 {
		t.Fatalf("forward: %d %v %+v", resp.StatusCode, err, out)
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
