package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"

	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// pendingGroup is GET /v1/pending/{id}.
type pendingGroup struct {
	ID         string          `json:"id"`
	Layout     string          `json:"layout"`
	Step       string          `json:"step"`
	Payload    string          `json:"payload"`
	Signatures int             `json:"signatures"`
	Threshold  int             `json:"threshold"`
	Envelope   json.RawMessage `json:"envelope"`
}

// runCosign adds this functionary's signature to a threshold link waiting in the network. With
// --products the functionary first checks that the pending link records exactly the products it
// built itself: a rebuilder signs what it reproduced, not what it was shown.
func runCosign(e *env, args []string) error {
	fs := e.flags("cosign")
	server := fs.String("server", "", "base URL of a node")
	keyPath := fs.String("key", "", "the functionary's private key (PKCS #8 PEM)")
	pendingID := fs.String("pending", "", "the pending link (sha256:<hex>, from submit or /v1/pending)")
	layout := fs.String("layout", "", "with --step: find the pending link of this layout")
	step := fs.String("step", "", "with --layout: the step whose pending link to sign")
	products := fs.StringArray("products", nil, "this functionary's own products; the link must record exactly these")
	lstrip := fs.StringArray("lstrip-paths", nil, "prefix to strip from product names; repeatable")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *server == "" || *keyPath == "" || (*pendingID == "") == (*layout == "" || *step == "") {
		return usagef("--server, --key, and either --pending or --layout with --step are required")
	}
	signer, keyID, err := loadSigner(*keyPath)
	if err != nil {
		return err
	}
	a := newAPI(*server)
	var mine map[string]digestSet
	if len(*products) > 0 {
		if mine, err = recordArtifacts(*products, recordOptions{lstrip: *lstrip}); err != nil {
			return err
		}
	}
	g, err := findPending(a, *pendingID, *layout, *step, mine)
	if err != nil {
		return err
	}
	m, err := intoto.ParseMetadata(g.Envelope)
	if err != nil {
		return fmt.Errorf("pending link %s: %w", g.ID, err)
	}
	if mine != nil && !sameProducts(m, mine) {
		return fmt.Errorf("%w: pending link %s records other products than yours; not signing", errCheck, g.ID)
	}
	signed, err := cosignDocument(g.Envelope, signer, keyID)
	if err != nil {
		return err
	}
	status, out, err := submitEnvelope(a, signed, g.Layout, nil)
	if err != nil {
		return err
	}
	out["status"] = status
	e.result(out, describeSubmission(status, out))
	return nil
}

// findPending fetches a pending group by ID, or finds the one of a layout's step whose link
// records the given products (the only one, without products).
func findPending(a *api, id, layout, step string, products map[string]digestSet) (*pendingGroup, error) {
	if id != "" {
		var g pendingGroup
		if err := a.getJSON("/v1/pending/"+url.PathEscape(id), &g); err != nil {
			return nil, err
		}
		if len(g.Envelope) == 0 {
			return nil, fmt.Errorf("%w: %s is no longer pending (already appended or expired)", errCheck, id)
		}
		return &g, nil
	}
	var list struct {
		Pending []pendingGroup `json:"pending"`
	}
	if err := a.getJSON("/v1/pending?layout="+url.QueryEscape(layout), &list); err != nil {
		return nil, err
	}
	var match []*pendingGroup
	for _, g := range list.Pending {
		if g.Step != step {
			continue
		}
		var full pendingGroup
		if err := a.getJSON("/v1/pending/"+url.PathEscape(g.ID), &full); err != nil || len(full.Envelope) == 0 {
			continue
		}
		if products != nil {
			m, err := intoto.ParseMetadata(full.Envelope)
			if err != nil || !sameProducts(m, products) {
				continue
			}
		}
		match = append(match, &full)
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: no pending link for step %s of %s matches", errCheck, step, layout)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("%w: %d pending links for step %s disagree; give --products or --pending", errCheck, len(match), step)
}

func sameProducts(m *intoto.Metadata, mine map[string]digestSet) bool {
	if m.Link == nil {
		return false
	}
	return maps.EqualFunc(m.Link.Products, mine, func(a, b intoto.DigestSet) bool { return maps.Equal(a, b) })
}
