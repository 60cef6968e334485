package intoto

import (
	"reflect"
	"testing"
)

// payloadCases are documents decodePayload tells in one pass or hands to encoding/json, with
// what the first pass reads: the type, whether a key names a field, whether it could read them.
var payloadCases = []struct {
	doc          string
	typ          string
	fields, read bool
}{
	{`{"_type":"bench","n":12,"pad":"xxxx"}`, "bench", false, true},
	{`{"n":-1.5e3,"ok":true,"none":null,"list":[1,{"a":"b"}]}`, "", false, true},
	{`{}`, "", false, true},
	{`{"_type":"https://example.com/Other/v1","x":{"name":1}}`, "https://example.com/Other/v1", false, true}, // nested keys are not fields
	{`{"_type":"link","name":"build"}`, "link", true, true},
	{`{"_type":"layout"}`, "layout", false, true},
	{`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"00"}}],"predicateType":"x","predicate":{}}`, "https://in-toto.io/Statement/v1", true, true},
	{`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://in-toto.io/attestation/link/v0.3","predicate":{"name":"b","materials":[]}}`, "https://in-toto.io/Statement/v1", true, true},
	{`{"_type":"https://in-toto.io/Statement/v1","subject":7}`, "https://in-toto.io/Statement/v1", true, true}, // read, refused by decodeStatement
	{`{"_TYPE":"link"}`, "link", false, true},             // encoding/json folds case
	{`{"_type":"x","_Type":"link"}`, "link", false, true}, // and keeps the last
	{`{"_type":"x","NAME":5}`, "x", true, true},           // a field, of the wrong type
	{`{"_type":"x","materials":{}}`, "x", true, true},
	{`{"_type":7}`, "", false, false}, // not a string
	{`{"_type":"x","a":"\u0041"}`, "x", false, false},
	{`{"_type":"x","a":1,"a":2}`, "x", false, false}, // a repeated key
	{`["_type"]`, "", false, false}, {`"x"`, "", false, false}, {`null`, "", false, false},
	{`{"a":01}`, "", false, false}, {`{"a":1} x`, "", false, false},
}

func TestScanType(t *testing.T) {
	for _, c := range payloadCases {
		typ, fields, read := scanType([]byte(c.doc))
		if read != c.read || (read && (typ != c.typ || fields != c.fields)) {
			t.Errorf("%s: %q fields=%v read=%v, want %q %v %v", c.doc, typ, fields, read, c.typ, c.fields, c.read)
		}
	}
}

// decodePayload decodes every document as decodeContent does: the same error, or the same kind
// and content.
func FuzzDecodePayload(f *testing.F) {
	for _, c := range payloadCases {
		f.Add([]byte(c.doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var fast, slow Metadata
		ef, es := fast.decodePayload(doc), slow.decodeContent(doc)
		if (ef == nil) != (es == nil) || (ef != nil && ef.Error() != es.Error()) {
			t.Fatalf("%q: decodePayload error %v, decodeContent %v", doc, ef, es)
		}
		if ef == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: decodePayload gives %+v, decodeContent %+v", doc, fast, slow)
		}
	})
}
