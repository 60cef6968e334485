package jsonscan

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{`"plain"`, "plain", true},
		{` "a\"b\\c\/d\b\f\n\r\t" `, "a\"b\\c/d\b\f\n\r\t", true},
		{`""`, "", true},
		{`"\u0041"`, "", false}, // \u escapes are left to encoding/json
		{`"é"`, "", false},      // so is anything but printable ASCII
		{"\"a\tb\"", "", false}, // a raw control character is not JSON
		{`"open`, "", false},
		{`"\x"`, "", false},
		{`1`, "", false},
	} {
		s := New([]byte(c.in))
		got := s.String()
		if ok := s.End(); ok != c.ok || (ok && got != c.want) {
			t.Errorf("%s: %q ok=%v, want %q ok=%v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestObject(t *testing.T) {
	read := func(in string) (map[string]string, bool) {
		s := New([]byte(in))
		out := map[string]string{}
		s.Object(func(k string) { out[k] = s.String() })
		return out, s.End()
	}
	if m, ok := read(` { "a" : "1" , "b":"2" } `); !ok || m["a"] != "1" || m["b"] != "2" {
		t.Errorf("got %v %v", m, ok)
	}
	if _, ok := read(`{}`); !ok {
		t.Error("empty object refused")
	}
	for _, in := range []string{`{"a":"1","a":"2"}`, `{"a":"1",}`, `{"a" "1"}`, `{"a":"1"`, `{"a":"1"}{}`, `{"a":1}`, `["a"]`} {
		if _, ok := read(in); ok {
			t.Errorf("%s: accepted", in)
		}
	}
}

func TestRaw(t *testing.T) {
	in := `{"x": {"a":[ "b", {"c":[]} ], "a":"dup keys are left as they are"} }`
	s := New([]byte(in))
	var raw []byte
	s.Object(func(string) { raw = s.Raw() })
	if !s.End() || string(raw) != `{"a":[ "b", {"c":[]} ], "a":"dup keys are left as they are"}` {
		t.Fatalf("raw %q", raw)
	}
	for _, in := range []string{`{"x":"s"}`, `{"x":{"a":true}}`, `{"x":{"a":[1]}}`, `{"x":{"a":"b",}}`} {
		s := New([]byte(in))
		s.Object(func(string) { s.Raw() })
		if s.End() {
			t.Errorf("%s: accepted", in)
		}
	}
	deep := `{"x":{"a":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}}`
	s = New([]byte(deep))
	s.Object(func(string) { s.Raw() })
	if s.End() {
		t.Error("nesting deeper than encoding/json's limit accepted")
	}
}

// Truncated input fails the scan wherever it ends.
func TestTruncated(t *testing.T) {
	in := `{"a":{"b":["c\n",{"d":"e\"f"}]},"g":"h\\"}`
	for n := range len(in) {
		s := New([]byte(in[:n]))
		s.Object(func(k string) {
			if k == "a" {
				s.Raw()
			} else {
				_ = s.String()
			}
		})
		if s.End() {
			t.Errorf("%q accepted", in[:n])
		}
	}
}
