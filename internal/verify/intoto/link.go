package intoto

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DigestSet maps a hash algorithm to a hex digest.
type DigestSet map[string]string

// Link is what a functionary recorded for a step: the step's name, the command, and the
// artifacts before (materials) and after (products).
type Link struct {
	Name        string               `json:"name"`
	Command     []string             `json:"command"`
	Materials   map[string]DigestSet `json:"materials"`
	Products    map[string]DigestSet `json:"products"`
	Byproducts  map[string]any       `json:"byproducts"`
	Environment map[string]any       `json:"environment"`
}

func (l *Link) normalized() *Link {
	if l.Materials == nil {
		l.Materials = map[string]DigestSet{}
	}
	if l.Products == nil {
		l.Products = map[string]DigestSet{}
	}
	return l
}

// sameArtifacts reports whether two links recorded the same materials and products.
func (l *Link) sameArtifacts(o *Link) bool {
	eq := func(a, b map[string]DigestSet) bool {
		return maps.EqualFunc(a, b, func(x, y DigestSet) bool { return maps.Equal(x, y) })
	}
	return eq(l.Materials, o.Materials) && eq(l.Products, o.Products)
}

// Statement is an ITE-6 in-toto statement.
type Statement struct {
	Type          string           `json:"_type"`
	Subject       []ResourceDigest `json:"subject"`
	PredicateType string           `json:"predicateType"`
	Predicate     json.RawMessage  `json:"predicate"`
	Link          *Link            `json:"-"`
}

// ResourceDigest is a subject or material of a statement.
type ResourceDigest struct {
	Name   string    `json:"name,omitempty"`
	URI    string    `json:"uri,omitempty"`
	Digest DigestSet `json:"digest"`
}

// Link predicate types this engine reads.
var linkPredicates = []string{
	"https://in-toto.io/Link/v1",
	"https://in-toto.io/Link/v0.2",
	"https://in-toto.io/attestation/link/v0.3",
}

func decodeStatement(doc []byte) (*Statement, error) {
	var st Statement
	if err := json.Unmarshal(doc, &st); err != nil {
		return nil, fmt.Errorf("%w: statement: %v", ErrMalformed, err)
	}
	if st.PredicateType == "" {
		return nil, fmt.Errorf("%w: statement without predicateType", ErrMalformed)
	}
	for _, s := range st.Subject {
		if len(s.Digest) == 0 {
			return nil, fmt.Errorf("%w: statement subject %q without digest", ErrMalformed, s.Name)
		}
	}
	if !slices.Contains(linkPredicates, st.PredicateType) {
		return &st, nil
	}
	var p struct {
		Name        string          `json:"name"`
		Command     []string        `json:"command"`
		Materials   json.RawMessage `json:"materials"`
		Byproducts  map[string]any  `json:"byproducts"`
		Environment map[string]any  `json:"environment"`
	}
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		return nil, fmt.Errorf("%w: link predicate: %v", ErrMalformed, err)
	}
	if p.Name == "" {
		return nil, fmt.Errorf("%w: link predicate without a name", ErrMalformed)
	}
	l := &Link{Name: p.Name, Command: p.Command, Byproducts: p.Byproducts, Environment: p.Environment,
		Materials: map[string]DigestSet{}, Products: map[string]DigestSet{}}
	if err := decodeMaterials(p.Materials, l.Materials); err != nil {
		return nil, err
	}
	for _, s := range st.Subject {
		l.Products[s.Name] = s.Digest
	}
	st.Link = l
	return &st, nil
}

// decodeMaterials reads materials as a list of resource descriptors (v0.3) or a name->digest map.
func decodeMaterials(raw json.RawMessage, into map[string]DigestSet) error {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "" || s == "null":
		return nil
	case strings.HasPrefix(s, "["):
		var list []ResourceDigest
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("%w: link materials: %v", ErrMalformed, err)
		}
		for _, r := range list {
			name := r.Name
			if name == "" {
				name = r.URI
			}
			into[name] = r.Digest
		}
	default:
		if err := json.Unmarshal(raw, &into); err != nil {
			return fmt.Errorf("%w: link materials: %v", ErrMalformed, err)
		}
	}
	return nil
}
