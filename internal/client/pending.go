package client

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"

	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// PendingGroup is GET /v1/pending/{id}.
type PendingGroup struct {
	ID         string          `json:"id"`
	Layout     string          `json:"layout"`
	Step       string          `json:"step"`
	Payload    string          `json:"payload"`
	Signatures int             `json:"signatures"`
	Threshold  int             `json:"threshold"`
	Envelope   json.RawMessage `json:"envelope"`
}

// FindPending fetches a pending group by ID, or finds the one of a layout's step whose link
// records the given products (the only one, without products).
func FindPending(a *API, id, layout, step string, products map[string]DigestSet) (*PendingGroup, error) {
	if id != "" {
		var g PendingGroup
		if err := a.GetJSON("/v1/pending/"+url.PathEscape(id), &g); err != nil {
			return nil, err
		}
		if len(g.Envelope) == 0 {
			return nil, fmt.Errorf("%w: %s is no longer pending (already appended or expired)", ErrCheck, id)
		}
		return &g, nil
	}
	var list struct {
		Pending []PendingGroup `json:"pending"`
	}
	if err := a.GetJSON("/v1/pending?layout="+url.QueryEscape(layout), &list); err != nil {
		return nil, err
	}
	var match []*PendingGroup
	for _, g := range list.Pending {
		if g.Step != step {
			continue
		}
		var full PendingGroup
		if err := a.GetJSON("/v1/pending/"+url.PathEscape(g.ID), &full); err != nil || len(full.Envelope) == 0 {
			continue
		}
		if products != nil {
			m, err := intoto.ParseMetadata(full.Envelope)
			if err != nil || !SameProducts(m, products) {
				continue
			}
		}
		match = append(match, &full)
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: no pending link for step %s of %s matches", ErrCheck, step, layout)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("%w: %d pending links for step %s disagree; give --products or --pending", ErrCheck, len(match), step)
}

func SameProducts(m *intoto.Metadata, mine map[string]DigestSet) bool {
	if m.Link == nil {
		return false
	}
	return maps.EqualFunc(m.Link.Products, mine, func(a, b intoto.DigestSet) bool { return maps.Equal(a, b) })
}
