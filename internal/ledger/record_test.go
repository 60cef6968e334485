package ledger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

func TestNewLeafSmallAndLarge(t *testing.T) {
	small := []byte(`{"payloadType":"t","payload":"","signatures":[]}`)
	leaf, blob, err := NewLeaf(small, "sha256:ab", []string{"PEM"})
	if err != nil || blob != nil {
		t.Fatalf("small: blob=%v err=%v", blob != nil, err)
	}
	l, err := ParseLeaf(leaf)
	if err != nil || !bytes.Equal(l.Envelope, small) || l.Layout != "sha256:ab" {
		t.Fatalf("small round trip: %+v %v", l, err)
	}
	large := []byte(strings.Repeat("x", 70000))
	leaf, blob, err = NewLeaf(large, "", nil)
	if err != nil || !bytes.Equal(blob, large) || len(leaf) > MaxBundleEntry {
		t.Fatalf("large: leaf=%d blob=%d err=%v", len(leaf), len(blob), err)
	}
	l, err = ParseLeaf(leaf)
	if err != nil || l.EnvelopeSize != len(large) || l.Envelope != nil {
		t.Fatalf("large round trip: %+v %v", l, err)
	}
}

// TestLeafForms checks which form NewLeaf writes for which envelope, byte for byte, and that
// each reads back to the envelope exactly as it was sent.
func TestLeafForms(t *testing.T) {
	env := `{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"c2ln"}]}`
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	pad := strings.Repeat("a", 60000)
	for _, c := range []struct {
		name, envelope, layout string
		keys                   []string
		leaf                   string
	}{
		{"embedded", env, "", nil, `{"envelope":` + env + `}`},
		{"embedded with layout and keys", env, "sha256:ab", []string{"-----BEGIN PUBLIC KEY-----\nx\n"},
			`{"layout":"sha256:ab","public_keys":["-----BEGIN PUBLIC KEY-----\nx\n"],"envelope":` + env + `}`},
		{"spaces inside kept", "{ \"a\" :\n[1, 2] }", "", nil, "{\"envelope\":{ \"a\" :\n[1, 2] }}"},
		{"trailing newline: base64", env + "\n", "", nil, `{"envelope":"` + b64(env+"\n") + `"}`},
		{"leading space: base64", " " + env, "x", nil, `{"envelope":"` + b64(" "+env) + `","layout":"x"}`},
		{"not UTF-8: base64", "{\"a\":\"\xff\"}", "", nil, `{"envelope":"` + b64("{\"a\":\"\xff\"}") + `"}`},
		{"not JSON: base64", "{a}", "", nil, `{"envelope":"` + b64("{a}") + `"}`},
		{"an array: base64", "[1]", "", nil, `{"envelope":"` + b64("[1]") + `"}`},
		{"embedded where base64 would not fit", `{"p":"` + pad + `"}`, "", nil, `{"envelope":{"p":"` + pad + `"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			leaf, blob, err := NewLeaf([]byte(c.envelope), c.layout, c.keys)
			if err != nil || blob != nil {
				t.Fatalf("NewLeaf: blob %d bytes, %v", len(blob), err)
			}
			if string(leaf) != c.leaf {
				t.Fatalf("leaf\n%.200s\nwant\n%.200s", leaf, c.leaf)
			}
			if !json.Valid(leaf) {
				t.Fatal("the leaf is not JSON")
			}
			l, err := ParseLeaf(leaf)
			if err != nil {
				t.Fatal(err)
			}
			if string(l.Envelope) != c.envelope || l.Layout != c.layout || !slices.Equal(l.PublicKeys, c.keys) {
				t.Fatalf("read back %+v", l)
			}
		})
	}
}

// TestParseLeafOnlyAsWritten: a leaf is read only in the spelling NewLeaf (or, for the base64
// form, an older witnessnet) wrote, so no two readers can find different envelopes in it.
func TestParseLeafOnlyAsWritten(t *testing.T) {
	env := `{"payloadType":"t","payload":"","signatures":[]}`
	// What every earlier log holds: the base64 form, whatever the envelope.
	old, _ := json.Marshal(Leaf{Envelope: []byte(env), Layout: "sha256:ab"})
	if l, err := ParseLeaf(old); err != nil || string(l.Envelope) != env {
		t.Fatalf("the base64 form of an earlier log: %+v %v", l, err)
	}
	for _, bad := range []string{
		`{"envelope":` + env + `,"layout":"x"}`,              // envelope not last
		`{"envelope": ` + env + `}`,                          // spaced
		`{"envelope":` + env + ` }`,                          // spaced
		`{"envelope":{"a":1},"envelope":` + env + `}`,        // repeated: readers keep the first or the last
		`{"layout":"x","layout":"y","envelope":` + env + `}`, // repeated
		`{"public_keys":[],"envelope":` + env + `}`,          // empty keys are left out
		`{"layout":"","envelope":` + env + `}`,               // empty layout is left out
		`{"envelope":"e30"}`,                                 // base64 unpadded
		`{"envelope":"e30=","layout":"x","extra":1}`,         // a member witnessnet does not write
		`{"layout":"x","envelope":"e30="}`,                   // base64 form reordered
		`{"envelope":{"a":"` + "\xff" + `"}}`,                // not UTF-8
		`{"envelope":"e30=","envelope_sha256":"00"}`,         // both
		`{"envelope":[1]}`,
		`{}`,
		`[]`,
	} {
		if l, err := ParseLeaf([]byte(bad)); err == nil {
			t.Errorf("ParseLeaf(%q) accepted: %+v", bad, l)
		}
	}
}

// FuzzLeaf: whatever the envelope, its leaf is JSON and reads back to the same bytes; whatever
// ParseLeaf accepts is exactly what NewLeaf, or the base64 form of an earlier log, writes.
func FuzzLeaf(f *testing.F) {
	f.Add([]byte(`{"payloadType":"t","payload":"","signatures":[]}`), "sha256:ab", "PEM")
	f.Add([]byte("{\"a\":\"\\u00e9\"}\n"), "", "")
	f.Add([]byte(`{"envelope":{"a":1}}`), "", "")
	f.Fuzz(func(t *testing.T, b []byte, layout, key string) {
		var keys []string
		if key != "" {
			keys = []string{key}
		}
		leaf, blob, err := NewLeaf(b, layout, keys)
		if err == nil && blob == nil && len(b) > 0 {
			if !json.Valid(leaf) {
				t.Fatalf("leaf %q is not JSON", leaf)
			}
			l, err := ParseLeaf(leaf)
			if err != nil || !bytes.Equal(l.Envelope, b) {
				t.Fatalf("envelope %q: leaf %q read back as %+v, %v", b, leaf, l, err)
			}
		}
		if l, err := ParseLeaf(b); err == nil {
			again, _, _ := NewLeaf(l.Envelope, l.Layout, l.PublicKeys)
			old, _ := json.Marshal(l) // the base64 and digest forms
			if !bytes.Equal(b, old) && (l.Envelope == nil || !bytes.Equal(b, again)) {
				t.Fatalf("ParseLeaf accepted %q, which no witnessnet writes", b)
			}
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	r := Record{Identity: IdentityOf([]byte("e")), Leaf: []byte("leaf"), Blob: []byte("blob")}
	b, _ := r.MarshalBinary()
	var got Record
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.Identity != r.Identity || !bytes.Equal(got.Leaf, r.Leaf) || !bytes.Equal(got.Blob, r.Blob) {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range [][]byte{nil, {2}, append(b, 0), b[:len(b)-1]} {
		if err := new(Record).UnmarshalBinary(bad); err == nil {
			t.Errorf("UnmarshalBinary(%x) accepted", bad)
		}
	}
}

func TestRecordTermsRoundTrip(t *testing.T) {
	r := Record{Identity: IdentityOf([]byte("e")), Leaf: []byte("leaf"), Terms: []string{"type:link", "step:x/build"}}
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := got.UnmarshalBinary(b); err != nil || len(got.Terms) != 2 || got.Terms[1] != "step:x/build" {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range [][]string{{""}, {"a\x00b"}, {string(make([]byte, MaxTermBytes+1))}} {
		if _, err := (&Record{Leaf: []byte("l"), Terms: bad}).MarshalBinary(); err == nil {
			t.Errorf("terms %q accepted", bad)
		}
	}
}

func FuzzRecord(f *testing.F) {
	r := Record{Identity: IdentityOf([]byte("e")), Leaf: []byte("leaf")}
	b, _ := r.MarshalBinary()
	f.Add(b)
	r.Terms = []string{"type:link", "digest:sha256:00"}
	b, _ = r.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		out, _ := r.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed bytes: %x -> %x", b, out)
		}
	})
}

func TestParseIdentity(t *testing.T) {
	id := IdentityOf([]byte("x"))
	got, err := ParseIdentity(id.String())
	if err != nil || got != id {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"", "sha256:", "sha256:zz", "md5:" + id.String()[7:], id.String() + "00"} {
		if _, err := ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%q) accepted", bad)
		}
	}
}

// TestLeafHasher checks leafHasher against rfc6962.DefaultHasher, reusing one hasher across
// leaves of different sizes.
func TestLeafHasher(t *testing.T) {
	var lh leafHasher
	for _, leaf := range [][]byte{nil, {}, []byte("a"), bytes.Repeat([]byte{0xff}, 63), bytes.Repeat([]byte("leaf"), 500), []byte("a")} {
		want := rfc6962.DefaultHasher.HashLeaf(leaf)
		if got := lh.hash(leaf); !bytes.Equal(got[:], want) {
			t.Fatalf("%d-byte leaf: %x, want %x", len(leaf), got, want)
		}
	}
}
