package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// admitted is what admission decided for a submission: an entry to append, or a contribution to
// a threshold link still short of signatures.
type admitted struct {
	rec    *ledger.Record
	cosign *ledger.Contribution
}

// parseKeys reads the public_keys of a submission: PEM or securesystemslib JSON. Submitters
// send the same few keys again and again; parsed keys are kept by their text.
func (n *Node) parseKeys(list []string) ([]*intoto.Key, error) {
	keys := make([]*intoto.Key, 0, len(list))
	for i, s := range list {
		if k, ok := n.keys.get(s); ok {
			keys = append(keys, k)
			continue
		}
		var k *intoto.Key
		var err error
		if b := bytes.TrimSpace([]byte(s)); len(b) > 0 && b[0] == '{' {
			k, err = intoto.ParseKeyJSON(b)
		} else {
			k, err = intoto.ParseKeyPEM([]byte(s), "")
		}
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "malformed_key", "public_keys[%d]: %v", i, err)
		}
		n.keys.put(s, k)
		keys = append(keys, k)
	}
	return keys, nil
}

// keyCache keeps parsed public keys by the text they were sent as. A key never changes; the
// cache starts over when full.
type keyCache struct {
	mu sync.Mutex
	m  map[string]*intoto.Key
}

const keyCacheSize = 4096

func (c *keyCache) get(text string) (*intoto.Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.m[text]
	return k, ok
}

func (c *keyCache) put(text string, k *intoto.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= keyCacheSize {
		c.m = map[string]*intoto.Key{}
	}
	c.m[text] = k
}

// requireAllSigned requires every signature on a document to verify under one of keys: a
// signature nobody can check is rejected, not stored half-trusted. It returns the keys that
// signed, distinct by material.
func requireAllSigned(m *intoto.Metadata, keys []*intoto.Key, code string, a *intoto.Admission) ([]*intoto.Key, error) {
	if len(m.Signatures) == 0 {
		return nil, errorf(http.StatusBadRequest, "unsigned", "the envelope carries no signature")
	}
	if len(keys) == 0 {
		return nil, errorf(http.StatusBadRequest, "no_keys", "no public keys were sent to check the envelope's signatures")
	}
	signers, bad := a.Check(m, keys)
	if len(bad) > 0 {
		s := m.Signatures[bad[0]]
		return nil, errorf(http.StatusBadRequest, code, "signature %d (keyid %q) does not verify under the keys sent", bad[0], s.KeyID)
	}
	return signers, nil
}

// admitInToto applies the in-toto admission rules to a parsed document.
func (n *Node) admitInToto(raw []byte, m *intoto.Metadata, req *submitRequest, a *intoto.Admission) (*admitted, error) {
	keys, err := n.parseKeys(req.PublicKeys)
	if err != nil {
		return nil, err
	}
	terms := []string{ledger.Term(ledger.TermType, m.Kind.String())}
	switch m.Kind {
	case intoto.KindLayout:
		if req.Layout != "" {
			return nil, errorf(http.StatusBadRequest, "layout_for_layout", "a layout is registered on its own; layout names the layout a link belongs to")
		}
		signers, err := requireAllSigned(m, keys, "bad_signature", a)
		if err != nil {
			return nil, err
		}
		if err := m.Layout.Validate(); err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid_layout", "%v", err)
		}
		if m.Layout.Expired(time.Now()) {
			return nil, errorf(http.StatusBadRequest, "layout_expired", "the layout expired at %s", m.Layout.Expires.Format(time.RFC3339))
		}
		terms = append(terms, ledger.Term(ledger.TermLayout, ledger.IdentityOf(raw).String()))
		terms = append(terms, keyTerms(signers)...)
	case intoto.KindLink:
		if req.Layout == "" {
			return nil, errorf(http.StatusBadRequest, "layout_required", "a link must name the registered layout it belongs to (layout: sha256:<hex>)")
		}
		return n.admitLink(raw, m, req, a)
	default:
		if req.Layout != "" {
			return nil, errorf(http.StatusBadRequest, "not_a_link", "only links belong to a layout; this envelope is a %s", m.Kind)
		}
		signers, err := requireAllSigned(m, keys, "bad_signature", a)
		if err != nil {
			return nil, err
		}
		terms = append(terms, keyTerms(signers)...)
		if m.Statement != nil {
			for _, s := range m.Statement.Subject {
				terms = append(terms, digestTerms(s.Digest)...)
			}
		}
	}
	rec, err := newRecord(raw, req.Layout, req.PublicKeys, terms)
	return &admitted{rec: rec}, err
}

// admitLink admits a link of a registered layout: its step exists, the layout has not expired,
// and every signature is by a functionary of that step. A link of a step with a threshold above
// one becomes a contribution to the co-signing group of its payload.
func (n *Node) admitLink(raw []byte, m *intoto.Metadata, req *submitRequest, a *intoto.Admission) (*admitted, error) {
	layout, err := n.layout(req.Layout)
	if err != nil {
		return nil, err
	}
	step, ok := layout.Step(m.Link.Name)
	if !ok {
		return nil, errorf(http.StatusForbidden, "unknown_step", "layout %s has no step %q", req.Layout, m.Link.Name)
	}
	if layout.Expired(time.Now()) {
		return nil, errorf(http.StatusForbidden, "layout_expired", "layout %s expired at %s", req.Layout, layout.Expires.Format(time.RFC3339))
	}
	funcs := layout.Functionaries(step)
	if len(m.Signatures) == 0 {
		return nil, errorf(http.StatusBadRequest, "unsigned", "the link carries no signature")
	}
	signers, bad := a.CheckLink(m, funcs, step)
	if len(bad) > 0 {
		return nil, errorf(http.StatusForbidden, "unauthorized_signer", "signature %d (keyid %q) is not by a functionary of step %q", bad[0], m.Signatures[bad[0]].KeyID, step.Name)
	}
	terms := []string{
		ledger.Term(ledger.TermType, intoto.KindLink.String()),
		ledger.Term(ledger.TermLayout, req.Layout),
		ledger.Term(ledger.TermStep, req.Layout+"/"+step.Name),
	}
	terms = append(terms, keyTerms(signers)...)
	// Artifact digests fill what is left of the record's term budget; the terms that find a
	// link by layout, step and signer always stay.
	var digests []string
	for _, set := range []map[string]intoto.DigestSet{m.Link.Materials, m.Link.Products} {
		for _, d := range set {
			digests = append(digests, digestTerms(d)...)
		}
	}
	slices.Sort(digests)
	digests = slices.Compact(digests)
	terms = append(terms, digests[:min(len(digests), ledger.MaxTerms-len(terms))]...)
	if step.Threshold <= 1 {
		rec, err := newRecord(raw, req.Layout, req.PublicKeys, terms)
		return &admitted{rec: rec}, err
	}
	// Every link of a threshold step goes through its co-signing group, even one that arrives
	// with enough signatures: the group then completes and closes, instead of lingering open
	// beside an entry for the same payload.
	d := m.PayloadDigest()
	con := &ledger.Contribution{Layout: req.Layout, Step: step.Name, Payload: "sha256:" + hex.EncodeToString(d[:]),
		Threshold: step.Threshold, Envelope: raw, PublicKeys: req.PublicKeys, Terms: terms,
		Expires: time.Now().Add(n.cfg.PendingTTL).UnixNano()}
	for _, k := range signers {
		con.Signers = append(con.Signers, k.Material())
	}
	return &admitted{cosign: con}, nil
}

func newRecord(raw []byte, layout string, keys []string, terms []string) (*ledger.Record, error) {
	leaf, blob, err := ledger.NewLeaf(raw, layout, keys)
	if err != nil {
		return nil, errorf(http.StatusRequestEntityTooLarge, "too_large", "%v", err)
	}
	return &ledger.Record{Identity: ledger.IdentityOf(raw), Leaf: leaf, Blob: blob, Terms: terms}, nil
}

func keyTerms(keys []*intoto.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, ledger.Term(ledger.TermKey, k.KeyID))
	}
	return out
}

func digestTerms(d intoto.DigestSet) []string {
	if h, ok := d["sha256"]; ok && len(h) == 64 {
		return []string{ledger.Term(ledger.TermDigest, "sha256:"+h)}
	}
	return nil
}

// layoutCache keeps parsed layouts by entry identity: a layout entry never changes.
type layoutCache struct {
	mu sync.Mutex
	m  map[ledger.Identity]*intoto.Layout
}

const (
	layoutCacheSize = 256
	layoutCatchUp   = 500 * time.Millisecond
)

// layout returns the registered layout with the given identity.
func (n *Node) layout(idText string) (*intoto.Layout, error) {
	id, err := ledger.ParseIdentity(idText)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed_layout", "layout: %v", err)
	}
	n.layouts.mu.Lock()
	l, ok := n.layouts.m[id]
	n.layouts.mu.Unlock()
	if ok {
		return l, nil
	}
	idx, err := n.ledger.Lookup(id)
	// A layout acknowledged by another member may not be applied here yet: a follower gives its
	// ledger a moment to catch up before calling the layout unknown.
	for deadline := time.Now().Add(layoutCatchUp); err != nil && !n.raft.IsLeader() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		idx, err = n.ledger.Lookup(id)
	}
	if err != nil {
		return nil, errorf(http.StatusNotFound, "unknown_layout", "no layout %s in the log", idText)
	}
	e, err := n.ledger.Entry(context.Background(), idx)
	if err != nil {
		return nil, err
	}
	m, err := intoto.ParseMetadata(e.Envelope)
	if err != nil || m.Kind != intoto.KindLayout {
		return nil, errorf(http.StatusBadRequest, "not_a_layout", "entry %s is not a layout", idText)
	}
	n.layouts.mu.Lock()
	if n.layouts.m == nil || len(n.layouts.m) >= layoutCacheSize {
		n.layouts.m = map[ledger.Identity]*intoto.Layout{}
	}
	n.layouts.m[id] = m.Layout
	n.layouts.mu.Unlock()
	return m.Layout, nil
}
