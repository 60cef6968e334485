package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
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

func isPlain(c byte) bool { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' }

// special flags exactly the words with a byte a string cannot hold as it is: every byte value in
// every position of a plain word, and random words.
func TestSpecial(t *testing.T) {
	for pos := range 8 {
		for v := range 256 {
			w := []byte("AAAAAAAA")
			w[pos] = byte(v)
			if got := special(binary.LittleEndian.Uint64(w)); got != !isPlain(byte(v)) {
				t.Fatalf("byte %#x at %d: special %v", v, pos, got)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		w := make([]byte, 8)
		for i := range w {
			// Mostly plain bytes, so that words without a special byte are common.
			if rng.IntN(10) == 0 {
				w[i] = byte(rng.IntN(256))
			} else {
				w[i] = byte(0x20 + rng.IntN(0x5f))
			}
		}
		want := !isPlain(w[0])
		for _, c := range w[1:] {
			want = want || !isPlain(c)
		}
		if got := special(binary.LittleEndian.Uint64(w)); got != want {
			t.Fatalf("%q: special %v", w, got)
		}
	}
}

// plain stops at the first byte a string cannot hold as it is, at every offset and length.
func TestPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x5f))
		}
		if len(b) > 0 && rng.IntN(4) > 0 {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		want := 0
		for want < len(b) && isPlain(b[want]) {
			want++
		}
		if got := plain(b); got != want {
			t.Fatalf("%q: plain %d, want %d", b, got, want)
		}
	}
}

// Skip accepts numbers and literals as RFC 8259 writes them, inside objects and arrays too, and
// what it accepts is JSON.
func TestSkip(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`0`, true}, {`-0`, true}, {`12`, true}, {`-12.5`, true}, {`1e9`, true}, {`1E+9`, true},
		{`2.5e-3`, true}, {`true`, true}, {`false`, true}, {`null`, true},
		{`{"a":[1,"x",{"b":null}],"c":-3.25E2}`, true}, {`[ 1 , true ]`, true},
		{`01`, false}, {`-`, false}, {`1.`, false}, {`.5`, false}, {`1e`, false}, {`1e+`, false},
		{`+1`, false}, {`0x1`, false}, {`tru`, false}, {`nul`, false}, {`nulll`, false},
		{`True`, false}, {`NaN`, false}, {`[1,]`, false}, {`{"a":1`, false}, {`1 2`, false},
	} {
		s := New([]byte(c.in))
		s.Skip()
		if ok := s.End(); ok != c.ok {
			t.Errorf("%s: ok=%v, want %v", c.in, ok, c.ok)
		}
		if c.ok && !json.Valid([]byte(c.in)) {
			t.Errorf("%s: the table says JSON, encoding/json does not", c.in)
		}
	}
	// Raw reads no numbers or literals: its callers decode those with encoding/json.
	s := New([]byte(`{"a":1}`))
	if s.Raw(); s.OK() {
		t.Error("Raw read a number")
	}
}

// Whatever Skip accepts, encoding/json accepts; Valid answers as json.Valid does.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,true,false,null,"s"]}`, `0`, `-0.0E-0`, `[{"":{}}]`, `01`, `1.e5`,
		`{"a":"\u00e9"}`, "{\"a\":\"\u00e9\"}", "{\"a\":\"\xff\"}", `{"a":1,}`, `{} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New(b)
		s.Skip()
		if s.End() && !json.Valid(b) {
			t.Fatalf("%q: skipped as JSON", b)
		}
		if Valid(b) != json.Valid(b) {
			t.Fatalf("%q: Valid says %v", b, Valid(b))
		}
	})
}
