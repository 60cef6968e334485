package intoto

import "testing"

// isOther says yes to objects of another _type, or none, with no key encoding/json would decode
// into a field; no to anything decodeContent reads as metadata or refuses, and to what it
// cannot tell.
func TestIsOther(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want bool
	}{
		{`{"_type":"bench","n":12,"pad":"xxxx"}`, true},
		{`{"n":-1.5e3,"ok":true,"none":null,"list":[1,{"a":"b"}]}`, true},
		{`{}`, true},
		{`{"_type":"https://example.com/Other/v1","x":{"name":1}}`, true}, // nested keys are not fields
		{`{"_type":"link","name":"build"}`, false},
		{`{"_type":"layout"}`, false},
		{`{"_type":"https://in-toto.io/Statement/v1","subject":[]}`, false},
		{`{"_TYPE":"link"}`, false},             // encoding/json folds case
		{`{"_type":"x","_Type":"link"}`, false}, // and keeps the last
		{`{"_type":"x","NAME":5}`, false},       // a field, of the wrong type: decodeContent refuses it
		{`{"_type":"x","materials":{}}`, false}, // a field
		{`{"_type":7}`, false},                  // not a string
		{`{"_type":"x","a":"\u0041"}`, false},   // jsonscan does not read \u
		{`{"_type":"x","a":1,"a":2}`, false},    // a repeated key
		{`["_type"]`, false}, {`"x"`, false}, {`null`, false}, {`{"a":01}`, false}, {`{"a":1} x`, false},
	} {
		if got := isOther([]byte(c.doc)); got != c.want {
			t.Errorf("%s: isOther %v, want %v", c.doc, got, c.want)
		}
	}
}

// Whatever isOther says yes to, decodeContent reads as a document of no kind it knows, without
// error.
func FuzzIsOther(f *testing.F) {
	for _, s := range []string{
		`{"_type":"bench","n":12,"pad":"xxxx"}`, `{"_type":"link","name":"x"}`, `{"Keys":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1"}`, `{"predicateType":"x"}`, `{"a":[true,null,-0.5]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !isOther(doc) {
			return
		}
		var m Metadata
		if err := m.decodeContent(doc); err != nil || m.Kind != KindOther || m.Layout != nil || m.Link != nil || m.Statement != nil {
			t.Fatalf("%q: isOther, but decodeContent gives kind %v, error %v", doc, m.Kind, err)
		}
	})
}
