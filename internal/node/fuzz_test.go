package node

import (
	"bytes"
	"net/http"
	"reflect"
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

// FuzzScanSubmission and FuzzScanBatch hold the decoding of a submission and of a batch, one
// pass with encoding/json behind it, to encoding/json alone: the same request, or an error from
// both.
func FuzzScanSubmission(f *testing.F) {
	s := newSigner(f)
	for _, seed := range [][]byte{
		s.body([]byte(`{"a":1}`)),
		[]byte(`{"envelope":{"payloadType":"t","payload":"","signatures":[]},"layout":"sha256:00","public_keys":["-----BEGIN\nX\n-----END"]}`),
		[]byte(`{"envelope":{"a":["b",{"c":[]}]},"public_keys":[]}`),
		[]byte(`{"envelope":{},"envelope":{}}`),
		[]byte(`{"Envelope":{},"layout":"\u0041"}`),
		[]byte(`{"envelope":{"a":1},"layout":null}`),
		[]byte(`{"envelope":{"a":"b"}} {}`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeSubmission(body)
		var want submitRequest
		werr := decodeStrict(body, &want)
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v (%v), encoding/json alone %+v (%v)", got, err, want, werr)
		}
	})
}

func FuzzScanBatch(f *testing.F) {
	s := newSigner(f)
	f.Add(append(append([]byte(`{"entries":[`), s.body([]byte(`{"a":1}`))...), `, {"envelope":{}}]}`...))
	for _, seed := range []string{`{"entries":[]}`, `{"entries":[1]}`, `{"entries":null}`, `{"Entries":[{}]}`, `{"entries":[{"x":"\t"}],"entries":[]}`, `{"entries":[{"a":[[[]]]}]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeBatchRequest(body)
		var want batchRequest
		werr := decodeStrict(body, &want)
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v (%v), encoding/json alone %+v (%v)", got, err, want, werr)
		}
	})
}

// What clients send (a signed envelope with PEM keys, a batch of such submissions) is decoded
// in one pass, not left to encoding/json.
func TestCommonSubmissionsScanned(t *testing.T) {
	s := newSigner(t)
	body := s.body([]byte(`{"a":1}`))
	if _, ok := scanSubmission(body); !ok {
		t.Errorf("submission not scanned: %s", body)
	}
	batch := append(append(append(append([]byte(`{"entries":[`), body...), ',', '\n'), body...), "]}"...)
	if req, ok := scanBatch(batch); !ok || len(req.Entries) != 2 {
		t.Errorf("batch not scanned: %s", batch)
	}
}
