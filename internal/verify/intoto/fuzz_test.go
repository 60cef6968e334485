package intoto

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/witnessnet/witnessnet/internal/verify"
)

func FuzzParseMetadata(f *testing.F) {
	for _, v := range []string{"demo.layout", "demo.dsse.layout", "dsse-only.root.layout", "package.d3ffd108.link", "package-dsse.2f89b927.link"} {
		f.Add(readVector(f, v))
	}
	f.Add([]byte(`{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"AAAA","cert":""}]}`))
	f.Add([]byte(`{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMetadata(raw)
		// A DSSE envelope parses as metadata only if it parses as an envelope.
		if err == nil && m.Format == FormatDSSE {
			if _, perr := verify.ParseEnvelope(bytes.TrimSpace(raw)); perr != nil {
				t.Fatalf("metadata from an envelope ParseEnvelope refuses: %v", perr)
			}
		}
		if err != nil {
			return
		}
		if m.Layout != nil {
			_ = m.Layout.Validate()
		}
		// Merging a document with itself keeps its signed content.
		merged, err := MergeSignatures(raw, raw)
		if err != nil {
			return
		}
		again, err := ParseMetadata(merged)
		if err != nil || !bytes.Equal(again.SignedBytes(), m.SignedBytes()) {
			t.Fatalf("merge changed the signed content: %v", err)
		}
	})
}

func FuzzCanonicalize(f *testing.F) {
	f.Add([]byte(`{"b":1,"a":[true,null,"x\"y\\z"],"c":{"d":-5}}`))
	f.Add(readVector(f, "demo.layout"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := canonicalize(raw)
		if err != nil {
			return
		}
		// Any re-encoding of the same JSON value has the same canonical form. (Canonical JSON
		// leaves control characters raw, so it is not itself JSON to parse again.)
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("canonicalized input that is not JSON: %v", err)
		}
		again, _ := json.MarshalIndent(v, "", " ")
		c2, err := canonicalize(again)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("re-encoding changed the canonical form: %q -> %q (%v)", c, c2, err)
		}
	})
}

func FuzzParseKeyJSON(f *testing.F) {
	f.Add([]byte(`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"00"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := ParseKeyJSON(raw)
		if err != nil {
			return
		}
		if k.Verify([]byte("m"), []byte("s")) {
			t.Fatal("a junk signature verified")
		}
	})
}

func FuzzRule(f *testing.F) {
	f.Add("MATCH", "src/*", "IN", "a", "WITH", "PRODUCTS", "FROM", "build", "src/x.c")
	f.Add("DISALLOW", "[!a-z]*", "", "", "", "", "", "", "Z")
	f.Fuzz(func(t *testing.T, a, b, c, d, e, g, h, i, name string) {
		var r []string
		for _, s := range []string{a, b, c, d, e, g, h, i} {
			if s != "" {
				r = append(r, s)
			}
		}
		if _, err := parseRule(r); err != nil {
			return
		}
		_ = fnmatch(b, name)
	})
}

// FuzzScanEnvelope holds the decoding of an envelope, one pass with encoding/json behind it, to
// encoding/json alone: the same document, or an error from both.
func FuzzScanEnvelope(f *testing.F) {
	for _, v := range []string{"demo.dsse.layout", "package-dsse.2f89b927.link", "demo.layout"} {
		f.Add(readVector(f, v))
	}
	for _, s := range []string{
		`{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"AAAA"}]}`,
		` { "payloadType" : "t\/\"\\\n" ,"payload":"", "signatures":[ ] } `,
		`{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"AAAA","cert":""}]}`,
		`{"payloadType":"t","payloadType":"u","payload":"aGk=","signatures":[]}`,
		`{"PayloadType":"t","payload":"aGk=","signatures":[{"KeyID":"k","sig":"AAAA"}]}`,
		`{"payloadType":"\u0074","payload":"aGk=","signatures":null}`,
		`{"payloadType":"é","payload":"aGk=","signatures":[{}]}`,
		`{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"AAAA"}]}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := decodeWire(raw)
		want, werr := decodeDocument(raw)
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v (%v), encoding/json alone %+v (%v)", got, err, want, werr)
		}
	})
}

// The DSSE envelopes of the in-toto vectors are decoded in one pass, not left to encoding/json.
func TestCommonEnvelopesScanned(t *testing.T) {
	for _, v := range []string{"demo.dsse.layout", "package-dsse.2f89b927.link"} {
		if _, ok := scanEnvelope(bytes.TrimSpace(readVector(t, v))); !ok {
			t.Errorf("%s not scanned", v)
		}
	}
}
