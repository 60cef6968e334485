package intoto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Canonicalize renders raw JSON in securesystemslib's canonical form: what a metablock's
// signatures cover. Signers use it on the bytes they are about to wrap.
func Canonicalize(raw []byte) ([]byte, error) { return canonicalize(raw) }

// canonicalize renders raw JSON in the canonical form that securesystemslib signs (OLPC
// canonical JSON): objects with sorted keys, no insignificant whitespace, strings escaping only
// backslash and double quote, integers only. It reads the bytes it was given, never a re-parsed
// struct, so that a field a struct would drop is still covered by the signature.
func canonicalize(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: canonical JSON: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: canonical JSON: trailing data", ErrMalformed)
	}
	var b bytes.Buffer
	if err := encodeCanonical(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 64

func encodeCanonical(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: canonical JSON: nesting deeper than %d", ErrMalformed, maxDepth)
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			return fmt.Errorf("%w: canonical JSON has no floating-point numbers (%s)", ErrMalformed, s)
		}
		if _, err := x.Int64(); err != nil {
			return fmt.Errorf("%w: canonical JSON: integer %s out of range", ErrMalformed, s)
		}
		b.WriteString(s)
	case string:
		writeCanonicalString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeCanonical(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonicalString(b, k)
			b.WriteByte(':')
			if err := encodeCanonical(b, x[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("%w: canonical JSON: unexpected %T", ErrMalformed, v)
	}
	return nil
}

func writeCanonicalString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
}

// canonicalValue encodes a Go value (for key IDs) canonically.
func canonicalValue(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return canonicalize(raw)
}
