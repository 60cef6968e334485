package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/witnessnet/witnessnet/internal/jsonscan"
)

// MaxBundleEntry is the largest leaf that a C2SP tlog-tiles entry bundle can hold (its length
// prefix is two bytes). Larger envelopes are committed to by digest; see Leaf.
const MaxBundleEntry = 1<<16 - 1

// ErrMalformedRecord is the rejection for a proposed record that does not decode. It is
// deterministic: every replica rejects the same bytes the same way.
var ErrMalformedRecord = errors.New("malformed record")

// Identity is the identity of an entry: SHA-256 of the envelope bytes exactly as the submitter
// sent them. Resubmissions of the same bytes are deduplicated by it.
type Identity [sha256.Size]byte

// IdentityOf returns the identity of envelope bytes.
func IdentityOf(envelope []byte) Identity { return sha256.Sum256(envelope) }

// String renders the identity the way the API does: "sha256:<hex>".
func (id Identity) String() string { return "sha256:" + hex.EncodeToString(id[:]) }

// ParseIdentity parses "sha256:<hex>".
func ParseIdentity(s string) (Identity, error) {
	var id Identity
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return id, fmt.Errorf("identity %q: want sha256:<hex>", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("identity %q: want 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// Leaf is the Merkle leaf data of an entry, the bytes a tile entry bundle holds and the leaf hash
// commits to. It is produced once, by the node that admitted the entry, and replicated verbatim,
// so every replica hashes identical bytes.
//
// The leaf data is a JSON object in one of three forms, each written exactly one way (ParseLeaf
// accepts a leaf only spelled that way):
//
//   - embedded: {"layout":…,"public_keys":[…],"envelope":<the envelope>}, the envelope's bytes
//     as sent, as the last member. An envelope that is a JSON object without whitespace around
//     it, in UTF-8, as every envelope sent inside a JSON submission is, is carried so.
//   - base64: {"envelope":"<base64>","layout":…,"public_keys":[…]}, for any other envelope that
//     fits (the only form before embedding, so older logs hold it throughout).
//   - digest: {"envelope_sha256":"<hex>","envelope_size":N,"layout":…,"public_keys":[…]}, for an
//     envelope whose leaf would not fit in a bundle; the envelope itself stays retrievable from
//     every node and is checked against the digest.
//
// layout and public_keys are left out when empty.
type Leaf struct {
	Envelope       []byte   `json:"envelope,omitempty"`
	EnvelopeSHA256 string   `json:"envelope_sha256,omitempty"`
	EnvelopeSize   int      `json:"envelope_size,omitempty"`
	Layout         string   `json:"layout,omitempty"`
	PublicKeys     []string `json:"public_keys,omitempty"`
}

// NewLeaf builds the leaf data for an envelope, in the embedded form where it can. It returns the
// leaf bytes and, for envelopes too large for an entry bundle, the envelope as a separate blob.
func NewLeaf(envelope []byte, layout string, publicKeys []string) (leaf, blob []byte, err error) {
	return newLeaf(envelope, layout, publicKeys, embeddable(envelope))
}

// appliedLeaf builds the leaf of an entry that the state machine itself makes (a threshold
// link's merged envelope), in the base64 or digest form only. Every replica makes those bytes on
// its own, also when it replays a command applied elsewhere by an earlier witnessnet, so they
// must be what every version writes: the forms earlier versions wrote, not the embedded one.
func appliedLeaf(envelope []byte, layout string, publicKeys []string) (leaf, blob []byte, err error) {
	return newLeaf(envelope, layout, publicKeys, false)
}

func newLeaf(envelope []byte, layout string, publicKeys []string, embedded bool) (leaf, blob []byte, err error) {
	// encoding/json would write other text for a string that is not UTF-8.
	if !utf8.ValidString(layout) || slices.ContainsFunc(publicKeys, func(k string) bool { return !utf8.ValidString(k) }) {
		return nil, nil, errors.New("leaf: the layout and public keys must be UTF-8")
	}
	l := Leaf{Envelope: envelope, Layout: layout, PublicKeys: publicKeys}
	if embedded {
		leaf, err = embed(&l)
	} else {
		leaf, err = json.Marshal(l)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(leaf) <= MaxBundleEntry {
		return leaf, nil, nil
	}
	id := IdentityOf(envelope)
	l = Leaf{EnvelopeSHA256: hex.EncodeToString(id[:]), EnvelopeSize: len(envelope), Layout: layout, PublicKeys: publicKeys}
	leaf, err = json.Marshal(l)
	if err != nil {
		return nil, nil, err
	}
	if len(leaf) > MaxBundleEntry {
		return nil, nil, fmt.Errorf("leaf metadata is %d bytes, more than an entry bundle holds", len(leaf))
	}
	return leaf, envelope, nil
}

// embeddable reports whether an envelope can be carried as it is, as the JSON value of the
// leaf's envelope member: a valid JSON object, in UTF-8, starting and ending with its braces
// (JSON readers drop whitespace around a value, and the envelope's identity counts it).
func embeddable(envelope []byte) bool {
	return len(envelope) >= 2 && envelope[0] == '{' && envelope[len(envelope)-1] == '}' &&
		jsonscan.Valid(envelope) && utf8.Valid(envelope)
}

// embed writes the embedded form of l: its other members as encoding/json writes them, then the
// envelope's bytes.
func embed(l *Leaf) ([]byte, error) {
	head, err := json.Marshal(Leaf{Layout: l.Layout, PublicKeys: l.PublicKeys})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(head)+len(`,"envelope":}`)+len(l.Envelope))
	out = append(out, head[:len(head)-1]...)
	if len(head) > len("{}") {
		out = append(out, ',')
	}
	out = append(out, `"envelope":`...)
	out = append(out, l.Envelope...)
	return append(out, '}'), nil
}

// Base64Form reports whether b is l in the base64 form, the one every earlier witnessnet wrote.
func Base64Form(l *Leaf, b []byte) bool {
	old, err := json.Marshal(Leaf{Envelope: l.Envelope, Layout: l.Layout, PublicKeys: l.PublicKeys})
	return err == nil && l.Envelope != nil && bytes.Equal(old, b)
}

// ParseLeaf decodes leaf data in any of its forms. It refuses bytes that are not the form's one
// spelling of what they decode to (members repeated, reordered or spaced out, another base64),
// so that every reader finds the same envelope in a leaf, whatever JSON decoder it uses. The
// base64 form of an envelope that NewLeaf would now embed is accepted: earlier logs hold it.
func ParseLeaf(b []byte) (*Leaf, error) {
	var m struct {
		Envelope       json.RawMessage `json:"envelope"`
		EnvelopeSHA256 string          `json:"envelope_sha256"`
		EnvelopeSize   int             `json:"envelope_size"`
		Layout         string          `json:"layout"`
		PublicKeys     []string        `json:"public_keys"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("leaf: %w", err)
	}
	l := &Leaf{EnvelopeSHA256: m.EnvelopeSHA256, EnvelopeSize: m.EnvelopeSize, Layout: m.Layout, PublicKeys: m.PublicKeys}
	embedded := len(m.Envelope) > 0 && m.Envelope[0] == '{'
	switch {
	case embedded:
		if !utf8.Valid(m.Envelope) {
			return nil, errors.New("leaf: the envelope it carries is not UTF-8")
		}
		l.Envelope = m.Envelope
	case len(m.Envelope) > 0:
		if err := json.Unmarshal(m.Envelope, &l.Envelope); err != nil {
			return nil, fmt.Errorf("leaf: envelope: %w", err)
		}
	}
	if (len(l.Envelope) == 0) == (l.EnvelopeSHA256 == "") {
		return nil, errors.New("leaf: exactly one of envelope and envelope_sha256 must be set")
	}
	var again []byte
	var err error
	if embedded {
		again, err = embed(l)
	} else {
		again, err = json.Marshal(l)
	}
	if err != nil || !bytes.Equal(again, b) {
		return nil, errors.New("leaf: not in the form witnessnet writes (members repeated, reordered or spaced, or a value written another way)")
	}
	return l, nil
}

// Record is one proposed entry, as the admitting node hands it to consensus.
type Record struct {
	Identity Identity
	Leaf     []byte   // Merkle leaf data, at most MaxBundleEntry bytes
	Blob     []byte   // the envelope, when Leaf carries it by digest only
	Terms    []string // search terms the entry is indexed under (see Search); not part of the leaf
}

// Record encodings: version 1 has no terms; version 2 appends them. Both decode.
const (
	recordV1 = 1
	recordV2 = 2
)

// MaxTerms and MaxTermBytes bound the search terms of one record.
const (
	MaxTerms     = 4096
	MaxTermBytes = 512
)

// MarshalBinary encodes a record: version, identity, uvarint-prefixed leaf, uvarint-prefixed
// blob, then (version 2) a uvarint count of uvarint-prefixed terms.
func (r *Record) MarshalBinary() ([]byte, error) {
	if len(r.Terms) > MaxTerms {
		return nil, fmt.Errorf("%w: %d terms", ErrMalformedRecord, len(r.Terms))
	}
	n := 1 + len(r.Identity) + 3*binary.MaxVarintLen64 + len(r.Leaf) + len(r.Blob)
	for _, t := range r.Terms {
		n += binary.MaxVarintLen64 + len(t)
	}
	out := make([]byte, 0, n)
	version := byte(recordV1)
	if len(r.Terms) > 0 {
		version = recordV2
	}
	out = append(out, version)
	out = append(out, r.Identity[:]...)
	out = binary.AppendUvarint(out, uint64(len(r.Leaf)))
	out = append(out, r.Leaf...)
	out = binary.AppendUvarint(out, uint64(len(r.Blob)))
	out = append(out, r.Blob...)
	if version == recordV2 {
		out = binary.AppendUvarint(out, uint64(len(r.Terms)))
		for _, t := range r.Terms {
			if !validTerm(t) {
				return nil, fmt.Errorf("%w: term %q", ErrMalformedRecord, t)
			}
			out = binary.AppendUvarint(out, uint64(len(t)))
			out = append(out, t...)
		}
	}
	return out, nil
}

// UnmarshalBinary decodes a record. The leaf and blob alias b.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) < 1+len(r.Identity) || (b[0] != recordV1 && b[0] != recordV2) {
		return fmt.Errorf("%w: bad header", ErrMalformedRecord)
	}
	version := b[0]
	copy(r.Identity[:], b[1:])
	b = b[1+len(r.Identity):]
	var err error
	if r.Leaf, b, err = cutField(b); err != nil {
		return err
	}
	if r.Blob, b, err = cutField(b); err != nil {
		return err
	}
	r.Terms = nil
	if version == recordV2 {
		if r.Terms, b, err = cutTerms(b); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformedRecord, len(b))
	}
	if len(r.Leaf) == 0 || len(r.Leaf) > MaxBundleEntry {
		return fmt.Errorf("%w: leaf of %d bytes", ErrMalformedRecord, len(r.Leaf))
	}
	if len(r.Blob) == 0 {
		r.Blob = nil
	}
	return nil
}

// validTerm reports whether t can be a search term: non-empty, bounded, and free of NUL (the
// index key separator).
func validTerm(t string) bool {
	return len(t) > 0 && len(t) <= MaxTermBytes && !strings.ContainsRune(t, 0)
}

func cutTerms(b []byte) ([]string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n == 0 || n > MaxTerms {
		return nil, nil, fmt.Errorf("%w: bad term count", ErrMalformedRecord)
	}
	b = b[k:]
	terms := make([]string, 0, n)
	for range n {
		var t []byte
		var err error
		if t, b, err = cutField(b); err != nil {
			return nil, nil, err
		}
		if !validTerm(string(t)) {
			return nil, nil, fmt.Errorf("%w: term of %d bytes", ErrMalformedRecord, len(t))
		}
		terms = append(terms, string(t))
	}
	return terms, b, nil
}

func cutField(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	// Non-minimal varints are refused so that every record has exactly one encoding.
	if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > uint64(len(b)-k) {
		return nil, nil, fmt.Errorf("%w: bad length", ErrMalformedRecord)
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}
