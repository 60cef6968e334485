package intoto

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// VerifyInput is everything a verification needs; the engine reads nothing else.
type VerifyInput struct {
	Layout     *Metadata
	LayoutKeys []*Key // every one of them must have signed the layout
	Links      []*Metadata
	// Products are the final products the verifier holds (name -> digests). Inspections are
	// not executed: their expected_materials are checked against these.
	Products map[string]DigestSet
	Params   map[string]string
	Now      time.Time
	// Sublayouts supplies, by step name, a sublayout signed by that step's functionaries and
	// the links it needs.
	Sublayouts map[string]Sublayout
}

// Sublayout is a layout standing in for a step, with its own links.
type Sublayout struct {
	Layout *Metadata
	Links  []*Metadata
}

// Report says what verification found, step by step.
type Report struct {
	Expires     time.Time           `json:"expires"`
	Steps       []*StepReport       `json:"steps"`
	Inspections []*InspectionReport `json:"inspections,omitempty"`
	Warnings    []string            `json:"warnings,omitempty"`
}

// StepReport is one step's outcome.
type StepReport struct {
	Name      string       `json:"name"`
	Threshold int          `json:"threshold"`
	Quorum    bool         `json:"quorum_mode,omitempty"`
	Counted   []string     `json:"counted"` // key IDs of the functionaries whose links counted
	Dissent   []Dissent    `json:"dissent,omitempty"`
	Ignored   []string     `json:"ignored,omitempty"` // links that did not count, and why
	Materials []RuleResult `json:"materials,omitempty"`
	Products  []RuleResult `json:"products,omitempty"`
	Sublayout *Report      `json:"sublayout,omitempty"`
	Link      string       `json:"link,omitempty"` // payload digest of the link that stands for the step
}

// Dissent is a group of functionaries who recorded other artifacts than the counted ones.
type Dissent struct {
	Functionaries []string `json:"functionaries"`
	Link          string   `json:"link"` // payload digest
}

// InspectionReport is one inspection's outcome.
type InspectionReport struct {
	Name      string       `json:"name"`
	Materials []RuleResult `json:"materials,omitempty"`
	Executed  bool         `json:"executed"`
}

// Verify verifies a supply chain: the layout's signatures and expiry, each step's links
// (functionaries, thresholds, agreement), every artifact rule, and the final products against
// the declared inspections. It returns a report even on failure, filled as far as it got.
func Verify(in VerifyInput) (*Report, error) {
	rep := &Report{}
	if in.Layout == nil || in.Layout.Kind != KindLayout {
		return rep, fmt.Errorf("%w: not a layout", ErrMalformed)
	}
	if len(in.LayoutKeys) == 0 {
		return rep, fmt.Errorf("%w: no layout keys given", ErrLayoutSignature)
	}
	signers := in.Layout.Signers(in.LayoutKeys)
	for _, k := range in.LayoutKeys {
		if !slices.ContainsFunc(signers, k.Same) {
			return rep, fmt.Errorf("%w: no valid signature by layout key %s", ErrLayoutSignature, k.KeyID)
		}
	}
	layout := in.Layout.Layout
	rep.Expires = layout.Expires
	if layout.Expired(in.Now) {
		return rep, fmt.Errorf("%w: at %s (now %s)", ErrExpired, layout.Expires.Format(time.RFC3339), in.Now.UTC().Format(time.RFC3339))
	}
	if err := layout.Validate(); err != nil {
		return rep, err
	}
	layout = layout.Substitute(in.Params)
	chosen := map[string]*Link{}
	for _, s := range layout.Steps {
		sr, link, err := verifyStep(layout, s, in)
		rep.Steps = append(rep.Steps, sr)
		if err != nil {
			return rep, err
		}
		chosen[s.Name] = link
		if len(s.ExpectedCommand) > 0 && !slices.Equal(s.ExpectedCommand, link.Command) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("step %s ran %q, the layout expects %q", s.Name, link.Command, s.ExpectedCommand))
		}
	}
	for i, s := range layout.Steps {
		l := chosen[s.Name]
		for _, side := range []string{"materials", "products"} {
			c := &artifactCheck{name: "step " + s.Name, side: side, artifacts: l.Materials, materials: l.Materials, products: l.Products, links: chosen}
			rules := s.ExpectedMaterials
			if side == "products" {
				c.artifacts, rules = l.Products, s.ExpectedProducts
			}
			res, err := c.apply(rules)
			if side == "materials" {
				rep.Steps[i].Materials = res
			} else {
				rep.Steps[i].Products = res
			}
			if err != nil {
				return rep, err
			}
		}
	}
	return rep, verifyFinalProducts(layout, in.Products, chosen, rep)
}

// verifyStep finds the links that count for a step and picks the one that stands for it.
func verifyStep(layout *Layout, s *Step, in VerifyInput) (*StepReport, *Link, error) {
	sr := &StepReport{Name: s.Name, Threshold: s.Threshold, Quorum: s.Quorum}
	funcs := layout.Functionaries(s)
	if sub, ok := in.Sublayouts[s.Name]; ok {
		return verifySublayout(s, sr, funcs, sub, in)
	}
	type group struct {
		link    *Link
		digest  string
		signers []*Key
	}
	var groups []*group
	for _, m := range in.Links {
		if m.Kind != KindLink || m.Link.Name != s.Name {
			continue
		}
		d := m.PayloadDigest()
		digest := "sha256:" + hex.EncodeToString(d[:])
		signers := m.Signers(funcs)
		if len(signers) == 0 {
			sr.Ignored = append(sr.Ignored, fmt.Sprintf("link %s: %v", digest, ErrUnauthorizedSigner))
			continue
		}
		i := slices.IndexFunc(groups, func(g *group) bool { return g.link.sameArtifacts(m.Link) })
		if i < 0 {
			groups = append(groups, &group{link: m.Link, digest: digest})
			i = len(groups) - 1
		}
		for _, k := range signers {
			if !slices.ContainsFunc(groups[i].signers, k.Same) {
				groups[i].signers = append(groups[i].signers, k)
			}
		}
	}
	if len(groups) == 0 {
		return sr, nil, fmt.Errorf("%w: step %s has no link signed by one of its functionaries", ErrMissingLink, s.Name)
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return len(b.signers) - len(a.signers) })
	if !s.Quorum && len(groups) > 1 {
		sr.Counted = keyIDs(groups[0].signers)
		for _, g := range groups[1:] {
			sr.Dissent = append(sr.Dissent, Dissent{Functionaries: keyIDs(g.signers), Link: g.digest})
		}
		return sr, nil, fmt.Errorf("%w: step %s: functionaries recorded %d different sets of artifacts", ErrLinksDisagree, s.Name, len(groups))
	}
	win := groups[0]
	sr.Counted, sr.Link = keyIDs(win.signers), win.digest
	for _, g := range groups[1:] {
		var others []*Key
		for _, k := range g.signers {
			if !slices.ContainsFunc(win.signers, k.Same) {
				others = append(others, k)
			}
		}
		sr.Dissent = append(sr.Dissent, Dissent{Functionaries: keyIDs(others), Link: g.digest})
	}
	if len(win.signers) < s.Threshold {
		return sr, nil, fmt.Errorf("%w: step %s: %d of %d functionaries", ErrThresholdNotMet, s.Name, len(win.signers), s.Threshold)
	}
	return sr, win.link, nil
}

// verifySublayout verifies a step that is itself a layout signed by the step's functionaries,
// and summarizes it as a link: the first step's materials and the last step's products.
func verifySublayout(s *Step, sr *StepReport, funcs []*Key, sub Sublayout, in VerifyInput) (*StepReport, *Link, error) {
	if sub.Layout == nil || sub.Layout.Kind != KindLayout {
		return sr, nil, fmt.Errorf("%w: step %s: the sublayout is not a layout", ErrSublayout, s.Name)
	}
	signers := sub.Layout.Signers(funcs)
	sr.Counted = keyIDs(signers)
	if len(signers) < s.Threshold {
		return sr, nil, fmt.Errorf("%w: step %s: sublayout signed by %d of %d functionaries", ErrThresholdNotMet, s.Name, len(signers), s.Threshold)
	}
	subRep, err := Verify(VerifyInput{Layout: sub.Layout, LayoutKeys: signers, Links: sub.Links, Params: in.Params, Now: in.Now})
	sr.Sublayout = subRep
	if err != nil {
		return sr, nil, fmt.Errorf("%w: step %s: %w", ErrSublayout, s.Name, err)
	}
	steps := sub.Layout.Layout.Steps
	summary := &Link{Name: s.Name, Materials: map[string]DigestSet{}, Products: map[string]DigestSet{}}
	if len(steps) > 0 {
		first, last := findLink(sub.Links, steps[0].Name), findLink(sub.Links, steps[len(steps)-1].Name)
		if first != nil {
			summary.Materials = first.Materials
		}
		if last != nil {
			summary.Products = last.Products
		}
	}
	return sr, summary, nil
}

func findLink(links []*Metadata, name string) *Link {
	for _, m := range links {
		if m.Kind == KindLink && m.Link.Name == name {
			return m.Link
		}
	}
	return nil
}

// verifyFinalProducts checks the final products the verifier holds: against each inspection's
// expected_materials (inspections are declared, not executed), and, for products no inspection
// names, against what some step produced.
func verifyFinalProducts(layout *Layout, products map[string]DigestSet, chosen map[string]*Link, rep *Report) error {
	if len(products) == 0 {
		if len(layout.Inspections) > 0 {
			rep.Warnings = append(rep.Warnings, "no final products given: inspections were not checked")
		}
		return nil
	}
	covered := map[string]bool{}
	for _, insp := range layout.Inspections {
		ir := &InspectionReport{Name: insp.Name}
		rep.Inspections = append(rep.Inspections, ir)
		c := &artifactCheck{name: "inspection " + insp.Name, side: "materials", artifacts: products, materials: products, products: map[string]DigestSet{}, links: chosen}
		res, err := c.apply(insp.ExpectedMaterials)
		ir.Materials = res
		if err != nil {
			if errors.Is(err, ErrRuleViolation) || errors.Is(err, ErrRequireMissing) {
				return fmt.Errorf("%w: %w", ErrProductMismatch, err)
			}
			return err
		}
		for _, r := range res {
			for _, n := range r.Consumed {
				covered[n] = true
			}
		}
		if len(insp.ExpectedProducts) > 0 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("inspection %s (%s) was not executed: its expected_products were not checked", insp.Name, strings.Join(insp.Run, " ")))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(products)) {
		if covered[name] || len(layout.Inspections) > 0 {
			continue
		}
		if !producedBySomeStep(name, products[name], chosen) {
			return fmt.Errorf("%w: %s is not a product of any step with these digests", ErrProductMismatch, name)
		}
	}
	return nil
}

func producedBySomeStep(name string, d DigestSet, chosen map[string]*Link) bool {
	for _, l := range chosen {
		if p, ok := l.Products[name]; ok && maps.Equal(p, d) {
			return true
		}
	}
	return false
}

func keyIDs(keys []*Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.KeyID
	}
	return out
}

// DigestOf returns the sha256 digest set of content (for final products given as bytes).
func DigestOf(content []byte) DigestSet {
	s := sha256.Sum256(content)
	return DigestSet{"sha256": hex.EncodeToString(s[:])}
}
