package node

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// FuzzSubmit throws arbitrary bodies at POST /v1/entries of a real one-node network: the answer
// is never a 5xx, and a 4xx never changes the log.
func FuzzSubmit(f *testing.F) {
	s := newSigner(f)
	owner, dev := newParty(f), newParty(f)
	rb := []*party{newParty(f), newParty(f)}
	for _, seed := range [][]byte{
		s.body([]byte(`{"a":1}`)),
		submitBody(rebuildLayout(owner, dev, rb, time.Now().Add(time.Hour)), "", owner.pem),
		submitBody(signDSSE(linkOf("build", digestA), dev), "sha256:"+digestA),
		[]byte(`{"envelope":{"signed":{"_type":"link"},"signatures":[]}}`),
		[]byte(`{"envelope":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]},"public_keys":["x"]}`),
	} {
		f.Add(seed)
	}
	tn := newTestNet(f, 1, nil)
	tn.leader()
	url := tn.members[0].url()
	f.Fuzz(func(t *testing.T, body []byte) {
		before := tn.members[0].node.ledger.Size()
		resp, err := http.Post(url+"/v1/entries", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%d for %q", resp.StatusCode, body)
		}
		if resp.StatusCode >= 400 && tn.members[0].node.ledger.Size() != before {
			t.Fatalf("a %d answer changed the log", resp.StatusCode)
		}
	})
}
