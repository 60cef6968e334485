package intoto

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/witnessnet/witnessnet/internal/jsonscan"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// Format is how a document is signed.
type Format int

const (
	// FormatDSSE is a DSSE envelope; signatures cover PAE(payloadType, payload).
	FormatDSSE Format = iota + 1
	// FormatMetablock is in-toto's classic {"signed", "signatures"}; signatures cover the
	// canonical JSON of "signed" as received.
	FormatMetablock
)

// Kind is what a document says it is.
type Kind int

const (
	// KindOther is a signed envelope that is not in-toto metadata this engine reads.
	KindOther Kind = iota
	// KindLayout is a layout.
	KindLayout
	// KindLink is a link (classic, or an ITE-6 statement with a link predicate).
	KindLink
	// KindAttestation is another ITE-6 statement.
	KindAttestation
)

func (k Kind) String() string {
	return [...]string{"envelope", "layout", "link", "attestation"}[k]
}

// PayloadTypeInToto is the DSSE payload type of in-toto documents.
const PayloadTypeInToto = "application/vnd.in-toto+json"

// Signature is one signature of a document.
type Signature struct {
	KeyID string
	Sig   []byte
}

// Metadata is one in-toto document as received.
type Metadata struct {
	Format     Format
	Kind       Kind
	Raw        []byte // the document exactly as received
	Signatures []Signature
	Layout     *Layout    // KindLayout
	Link       *Link      // KindLink
	Statement  *Statement // an ITE-6 statement, when the payload is one

	payloadType string
	payload     []byte // DSSE payload, or the raw "signed" value of a metablock
	signed      []byte // what signatures cover
}

// wireDocument is either envelope form, decoded in one pass.
type wireDocument struct {
	Signed      json.RawMessage `json:"signed"`
	PayloadType *string         `json:"payloadType"`
	Payload     *string         `json:"payload"`
	Signatures  []wireSignature `json:"signatures"`
}

type wireSignature struct {
	KeyID string  `json:"keyid"`
	Sig   *string `json:"sig"`
	Cert  *string `json:"cert,omitempty"` // metablocks only
}

// decodeWire decodes either envelope form: in one pass when it is a DSSE envelope of the common
// form, else with encoding/json (decodeDocument), which then decides.
func decodeWire(raw []byte) (wireDocument, error) {
	if w, ok := scanEnvelope(raw); ok {
		return w, nil
	}
	return decodeDocument(raw)
}

// scanEnvelope decodes the common form of a DSSE envelope in one pass (see package jsonscan);
// when it cannot, ok is false and decodeDocument decides.
func scanEnvelope(raw []byte) (w wireDocument, ok bool) {
	s := jsonscan.New(raw)
	s.Object(func(k string) {
		switch k {
		case "payloadType":
			v := s.String()
			w.PayloadType = &v
		case "payload":
			v := s.String()
			w.Payload = &v
		case "signatures":
			w.Signatures = []wireSignature{}
			s.Array(func() {
				var sig wireSignature
				s.Object(func(k string) {
					switch k {
					case "keyid":
						sig.KeyID = s.String()
					case "sig":
						v := s.String()
						sig.Sig = &v
					default:
						s.Fail()
					}
				})
				w.Signatures = append(w.Signatures, sig)
			})
		default:
			s.Fail()
		}
	})
	if !s.End() {
		return wireDocument{}, false // nothing half-decoded reaches the caller
	}
	return w, true
}

// decodeDocument decodes either envelope form with encoding/json: exactly one object, no
// unknown fields.
func decodeDocument(raw []byte) (wireDocument, error) {
	var w wireDocument
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return w, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return w, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return w, nil
}

// ParseMetadata parses a DSSE envelope or a metablock and the document inside. It fails only
// when the envelope itself, or in-toto content it claims to carry, is malformed; a well-formed
// envelope of another payload is KindOther.
func ParseMetadata(raw []byte) (*Metadata, error) {
	raw = bytes.TrimSpace(raw)
	w, err := decodeWire(raw)
	if err != nil {
		return nil, err
	}
	if w.Signed != nil {
		if w.PayloadType != nil || w.Payload != nil {
			return nil, fmt.Errorf("%w: both a metablock and a DSSE envelope", ErrMalformed)
		}
		return parseMetablock(raw, &w)
	}
	env, err := w.envelope()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m := &Metadata{Format: FormatDSSE, Raw: raw, payloadType: env.PayloadType, payload: env.Payload,
		signed: verify.PAE(env.PayloadType, env.Payload)}
	for _, s := range env.Signatures {
		m.Signatures = append(m.Signatures, Signature{KeyID: s.KeyID, Sig: s.Sig})
	}
	if env.PayloadType != PayloadTypeInToto {
		return m, nil
	}
	return m, m.decodePayload(env.Payload)
}

// envelope reads the DSSE envelope from the decoded document, as verify.ParseEnvelope would
// from its bytes (which refuses a signature's cert field, a metablock's).
func (w *wireDocument) envelope() (*verify.Envelope, error) {
	we := verify.WireEnvelope{PayloadType: w.PayloadType, Payload: w.Payload}
	for i, s := range w.Signatures {
		if s.Cert != nil {
			return nil, fmt.Errorf("%w: envelope: signature %d: unknown field \"cert\"", verify.ErrMalformed, i)
		}
		we.Signatures = append(we.Signatures, verify.WireSignature{KeyID: s.KeyID, Sig: s.Sig})
	}
	return we.Envelope()
}

func parseMetablock(raw []byte, w *wireDocument) (*Metadata, error) {
	if len(w.Signed) == 0 || w.Signed[0] != '{' {
		return nil, fmt.Errorf("%w: metablock: signed must be an object", ErrMalformed)
	}
	signed, err := canonicalize(w.Signed)
	if err != nil {
		return nil, err
	}
	m := &Metadata{Format: FormatMetablock, Raw: raw, payload: w.Signed, signed: signed}
	for i, s := range w.Signatures {
		if s.Sig == nil {
			return nil, fmt.Errorf("%w: metablock signature %d has no sig", ErrMalformed, i)
		}
		sig, err := hex.DecodeString(*s.Sig)
		if err != nil {
			return nil, fmt.Errorf("%w: metablock signature %d: sig is not hex", ErrMalformed, i)
		}
		m.Signatures = append(m.Signatures, Signature{KeyID: s.KeyID, Sig: sig})
	}
	return m, m.decodePayload(w.Signed)
}

// wireContent is every in-toto document kind's fields, so one decoding pass reads any of them.
type wireContent struct {
	Type string `json:"_type"`
	// layout
	Expires string                     `json:"expires"`
	Keys    map[string]json.RawMessage `json:"keys"`
	Steps   []wireStep                 `json:"steps"`
	Inspect []wireInspection           `json:"inspect"`
	Readme  string                     `json:"readme"`
	// link
	Name        string               `json:"name"`
	Command     []string             `json:"command"`
	Materials   map[string]DigestSet `json:"materials"`
	Products    map[string]DigestSet `json:"products"`
	Byproducts  map[string]any       `json:"byproducts"`
	Environment map[string]any       `json:"environment"`
	// statement
	Subject       []ResourceDigest `json:"subject"`
	PredicateType string           `json:"predicateType"`
	Predicate     json.RawMessage  `json:"predicate"`
}

// decodePayload reads the in-toto document: a classic layout or link, or an ITE-6 statement.
// encoding/json reads a document twice (validating, then decoding), and decodeContent reads a
// statement twice over; a first pass with jsonscan tells a statement, or a document of no kind
// this engine reads, without them. FuzzDecodePayload holds the result to decodeContent's.
func (m *Metadata) decodePayload(doc []byte) error {
	typ, fields, ok := scanType(doc)
	switch {
	case !ok:
	case strings.HasPrefix(typ, statementPrefix):
		// decodeContent decodes it as a link-shaped document, then as a statement.
		return m.setStatement(doc)
	case typ != "layout" && typ != "link" && !fields:
		// decodeContent finds no field it knows, and no kind.
		return nil
	}
	return m.decodeContent(doc)
}

const statementPrefix = "https://in-toto.io/Statement/"

// contentKeys are the keys encoding/json decodes into a wireContent field other than its type,
// lower-cased: it matches keys to fields ignoring case.
var contentKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[wireContent]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "_type" {
			keys[strings.ToLower(name)] = true
		}
	}
	return keys
}()

// scanType reads doc in one pass with jsonscan: the type encoding/json would decode into
// wireContent (keys folding alike, the last kept), and whether another key names a field of
// wireContent. ok is false when jsonscan cannot read doc as a JSON object with a string type,
// if any.
func scanType(doc []byte) (typ string, fields, ok bool) {
	s := jsonscan.New(doc)
	s.Object(func(key string) {
		switch k := strings.ToLower(key); {
		case k == "_type":
			typ = s.String()
		default:
			fields = fields || contentKeys[k]
			s.Skip()
		}
	})
	return typ, fields, s.End()
}

// decodeContent decodes the in-toto document with encoding/json.
func (m *Metadata) decodeContent(doc []byte) error {
	var c wireContent
	if err := json.Unmarshal(doc, &c); err != nil {
		// A statement's materials may be a list, which the link-shaped fields cannot hold.
		var head struct {
			Type string `json:"_type"`
		}
		if json.Unmarshal(doc, &head) != nil || !strings.HasPrefix(head.Type, statementPrefix) {
			return fmt.Errorf("%w: payload: %v", ErrMalformed, err)
		}
		c = wireContent{Type: head.Type}
	}
	switch {
	case c.Type == "layout":
		l, err := layoutFrom(&c)
		if err != nil {
			return err
		}
		m.Kind, m.Layout = KindLayout, l
	case c.Type == "link":
		if c.Name == "" {
			return fmt.Errorf("%w: link without a name", ErrMalformed)
		}
		l := &Link{Name: c.Name, Command: c.Command, Materials: c.Materials, Products: c.Products, Byproducts: c.Byproducts, Environment: c.Environment}
		m.Kind, m.Link = KindLink, l.normalized()
	case strings.HasPrefix(c.Type, statementPrefix):
		return m.setStatement(doc)
	}
	return nil
}

// setStatement decodes an ITE-6 statement, a link if its predicate is one.
func (m *Metadata) setStatement(doc []byte) error {
	st, err := decodeStatement(doc)
	if err != nil {
		return err
	}
	m.Statement, m.Kind = st, KindAttestation
	if st.Link != nil {
		m.Kind, m.Link = KindLink, st.Link
	}
	return nil
}

// SignedBytes is what the signatures cover.
func (m *Metadata) SignedBytes() []byte { return m.signed }

// PayloadDigest identifies the signed content: documents with equal digests are the same
// statement, whoever signed them.
func (m *Metadata) PayloadDigest() [32]byte { return sha256.Sum256(m.signed) }

// Check verifies each signature once against keys. It returns the keys, distinct by key
// material and in the order of keys, that made at least one valid signature, and the indexes of
// the signatures no key verifies. Key ID strings only order the work: a signature is tried first
// against the keys listed under its keyid, then against the rest, so a key listed under another
// ID still counts. One signature counts for one key at most, and one key never counts twice.
func (m *Metadata) Check(keys []*Key) (signers []*Key, unverified []int) {
	return m.check(keys, (*Key).Verify)
}

// check is Check with the signature verification given.
func (m *Metadata) check(keys []*Key, verify func(k *Key, msg, sig []byte) bool) (signers []*Key, unverified []int) {
	made := make([]bool, len(keys))
	for i, s := range m.Signatures {
		j := m.signerOf(keys, s, verify)
		if j < 0 {
			unverified = append(unverified, i)
			continue
		}
		// Several entries of keys may hold the same material: the first of them counts.
		made[slices.IndexFunc(keys, keys[j].Same)] = true
	}
	for j, k := range keys {
		if made[j] {
			signers = append(signers, k)
		}
	}
	return signers, unverified
}

// signerOf returns the index in keys of a key that verifies s, or -1.
func (m *Metadata) signerOf(keys []*Key, s Signature, verify func(k *Key, msg, sig []byte) bool) int {
	for j, k := range keys {
		if k.KeyID == s.KeyID && verify(k, m.signed, s.Sig) {
			return j
		}
	}
	for j, k := range keys {
		if k.KeyID != s.KeyID && verify(k, m.signed, s.Sig) {
			return j
		}
	}
	return -1
}

// Signers returns the keys, distinct by key material, that made at least one valid signature
// (see Check).
func (m *Metadata) Signers(keys []*Key) []*Key {
	signers, _ := m.Check(keys)
	return signers
}

// MergeSignatures combines two signed copies of the same document into one carrying every
// distinct signature, in a canonical order. It is deterministic: replicas merging the same
// inputs produce the same bytes.
func MergeSignatures(a, b []byte) ([]byte, error) {
	ma, err := ParseMetadata(a)
	if err != nil {
		return nil, err
	}
	mb, err := ParseMetadata(b)
	if err != nil {
		return nil, err
	}
	if ma.Format != mb.Format || !bytes.Equal(ma.signed, mb.signed) {
		return nil, fmt.Errorf("%w: the documents sign different contents", ErrMalformed)
	}
	sigs := append(slices.Clone(ma.Signatures), mb.Signatures...)
	slices.SortFunc(sigs, func(x, y Signature) int {
		if c := strings.Compare(x.KeyID, y.KeyID); c != 0 {
			return c
		}
		return bytes.Compare(x.Sig, y.Sig)
	})
	sigs = slices.CompactFunc(sigs, func(x, y Signature) bool { return x.KeyID == y.KeyID && bytes.Equal(x.Sig, y.Sig) })
	return ma.withSignatures(sigs)
}

// withSignatures renders the document with another signature list.
func (m *Metadata) withSignatures(sigs []Signature) ([]byte, error) {
	type wsig struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	}
	ws := make([]wsig, len(sigs))
	if m.Format == FormatMetablock {
		for i, s := range sigs {
			ws[i] = wsig{s.KeyID, hex.EncodeToString(s.Sig)}
		}
		return json.Marshal(struct {
			Signatures []wsig          `json:"signatures"`
			Signed     json.RawMessage `json:"signed"`
		}{ws, m.payload})
	}
	for i, s := range sigs {
		ws[i] = wsig{s.KeyID, base64.StdEncoding.EncodeToString(s.Sig)}
	}
	return json.Marshal(struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []wsig `json:"signatures"`
	}{m.payloadType, base64.StdEncoding.EncodeToString(m.payload), ws})
}

// AddSignature returns the document with one more signature over its signed bytes.
func AddSignature(raw []byte, keyID string, sig []byte) ([]byte, error) {
	m, err := ParseMetadata(raw)
	if err != nil {
		return nil, err
	}
	sigs := append(slices.Clone(m.Signatures), Signature{KeyID: keyID, Sig: sig})
	return m.withSignatures(sigs)
}

// PayloadType is the DSSE payload type (empty for a metablock).
func (m *Metadata) PayloadType() string { return m.payloadType }
