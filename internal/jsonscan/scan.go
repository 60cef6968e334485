// Package jsonscan reads, in one pass, the common shape of the JSON that witnessnet's hot paths
// decode: submissions, batches of them and DSSE envelopes. It knows objects, arrays and strings
// of printable ASCII with the short escapes (\" \\ \/ \b \f \n \r \t), and numbers and literals
// only as values it skips (Skip), nothing else: on any other input (\u escapes, other bytes, a
// key its caller does not expect, a repeated key) it fails, and the caller decodes the input
// again with encoding/json, which decides. So a fast decoding that succeeds is always the one
// encoding/json gives; the callers' fuzz targets check exactly that.
//
// encoding/json makes four to six passes over a submitted envelope (finding the end of each
// value, validating, decoding, once per nesting of json.RawMessage), which cost about as much as
// checking its signature.
package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"slices"
)

// Scanner reads one JSON text. Once a read fails, every later read fails too and OK reports false.
type Scanner struct {
	b      []byte
	i      int
	depth  int
	failed bool
}

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// New returns a scanner over b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// OK says whether every read so far succeeded.
func (s *Scanner) OK() bool { return !s.failed }

// Fail makes the scan fail: the caller met something it does not decode itself.
func (s *Scanner) Fail() { s.failed = true }

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end.
func (s *Scanner) peek() byte {
	s.ws()
	if s.failed || s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *Scanner) expect(c byte) bool {
	if s.peek() != c {
		s.failed = true
		return false
	}
	s.i++
	return true
}

// End reads the end of the text: nothing but whitespace may follow.
func (s *Scanner) End() bool {
	s.ws()
	if s.i != len(s.b) {
		s.failed = true
	}
	return !s.failed
}

// String reads a string.
func (s *Scanner) String() string {
	if !s.expect('"') {
		return ""
	}
	start := s.i
	s.i += plain(s.b[s.i:])
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			v := string(s.b[start:s.i])
			s.i++
			return v
		case '\\':
			return s.escaped(start)
		}
	}
	s.failed = true
	return ""
}

// escaped finishes a string that started at start and has an escape at s.i.
func (s *Scanner) escaped(start int) string {
	out := append(make([]byte, 0, s.i-start+16), s.b[start:s.i]...)
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return string(out)
		case '\\':
			if s.i+1 >= len(s.b) {
				s.failed = true
				return ""
			}
			r, ok := unescape(s.b[s.i+1])
			if !ok { // \u, or not JSON
				s.failed = true
				return ""
			}
			out = append(out, r)
			s.i += 2
		default:
			n := plain(s.b[s.i:])
			if n == 0 {
				s.failed = true
				return ""
			}
			out = append(out, s.b[s.i:s.i+n]...)
			s.i += n
		}
	}
	s.failed = true
	return ""
}

// Object reads an object, calling field with each key; field MUST read the key's value (or
// fail the scan). A key that appears twice fails the scan: encoding/json keeps the last.
func (s *Scanner) Object(field func(key string)) {
	if !s.expect('{') {
		return
	}
	var seen []string
	s.list('}', func() {
		k := s.String()
		if slices.Contains(seen, k) {
			s.failed = true
		}
		seen = append(seen, k)
		if s.expect(':') {
			field(k)
		}
	})
}

// Array reads an array, calling elem to read each element.
func (s *Scanner) Array(elem func()) {
	if s.expect('[') {
		s.list(']', elem)
	}
}

// list reads the items of an object or an array, up to and including end, its opening bracket
// read: item reads one (a member, or an element).
func (s *Scanner) list(end byte, item func()) {
	if s.peek() == end {
		s.i++
		return
	}
	for !s.failed {
		item()
		switch s.peek() {
		case ',':
			s.i++
		case end:
			s.i++
			return
		default:
			s.failed = true
		}
	}
}

// Strings reads an array of strings.
func (s *Scanner) Strings() []string {
	out := []string{}
	s.Array(func() { out = append(out, s.String()) })
	return out
}

// Raw reads an object and returns its bytes as they are in the text, what json.RawMessage holds.
// Values inside it are checked as the scanner knows them, keys not at all beyond their syntax.
func (s *Scanner) Raw() []byte {
	if s.peek() != '{' {
		s.failed = true
		return nil
	}
	start := s.i
	s.value(false)
	if s.failed {
		return nil
	}
	return s.b[start:s.i]
}

// Skip reads any JSON value, numbers and literals included, without keeping it.
func (s *Scanner) Skip() { s.value(true) }

// value reads a value the scanner knows: objects, arrays and strings, and with all numbers and
// literals too.
func (s *Scanner) value(all bool) {
	if s.depth++; s.depth > maxDepth {
		s.failed = true
	}
	defer func() { s.depth-- }()
	switch c := s.peek(); {
	case c == '{':
		s.i++
		s.list('}', func() {
			s.skipString()
			if s.expect(':') {
				s.value(all)
			}
		})
	case c == '[':
		s.Array(func() { s.value(all) })
	case c == '"':
		s.skipString()
	case all && c == 't':
		s.literal("true")
	case all && c == 'f':
		s.literal("false")
	case all && c == 'n':
		s.literal("null")
	case all && (c == '-' || isDigit(c)):
		s.number()
	default:
		s.failed = true
	}
}

func (s *Scanner) literal(lit string) {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		s.failed = true
		return
	}
	s.i += len(lit)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads a number as RFC 8259 writes one: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
// What follows it is the caller's to check.
func (s *Scanner) number() {
	b, i := s.b, s.i
	digits := func() bool {
		start := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		s.failed = true
		return
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			s.failed = true
			return
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			s.failed = true
			return
		}
	}
	s.i = i
}

// skipString reads a string as String does, without keeping it.
func (s *Scanner) skipString() {
	if !s.expect('"') {
		return
	}
	for s.i += plain(s.b[s.i:]); s.i < len(s.b); s.i += plain(s.b[s.i:]) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return
		case '\\':
			if s.i+1 >= len(s.b) {
				s.failed = true
				return
			}
			if _, ok := unescape(s.b[s.i+1]); !ok {
				s.failed = true
				return
			}
			s.i += 2
		default:
			s.failed = true
			return
		}
	}
	s.failed = true
}

// Bytes of a word, for testing eight bytes at once.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special reports whether any byte of x is outside printable ASCII or is '"' or '\\'. (Each test
// may also flag bytes above a flagged byte, through a carry or borrow, never a word without one.)
func special(x uint64) bool {
	ctl := (x - ones*0x20) &^ x          // a byte below 0x20 (or one of 0x80 and up, caught next)
	high := (x + ones) | x               // a byte of 0x7f and up
	q, bs := x^(ones*'"'), x^(ones*'\\') // a zero byte where x holds '"' or '\\'
	return (ctl|high|((q-ones)&^q)|((bs-ones)&^bs))&highs != 0
}

// plain is how many bytes at the start of b are printable ASCII other than '"' and '\\', the
// bytes a string holds as they are. It tests eight at a time: the strings the scanner reads
// most, base64 payloads and signatures, run to hundreds of bytes.
func plain(b []byte) int {
	i := 0
	for ; i+8 <= len(b) && !special(binary.LittleEndian.Uint64(b[i:])); i += 8 {
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			break
		}
	}
	return i
}

// unescape decodes the short escape \c.
func unescape(c byte) (byte, bool) {
	switch c {
	case '"', '\\', '/':
		return c, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

// Valid reports whether b is one valid JSON text, as json.Valid does: the scanner decides the
// texts it knows, encoding/json the rest.
func Valid(b []byte) bool {
	s := New(b)
	s.Skip()
	return s.End() || json.Valid(b)
}
