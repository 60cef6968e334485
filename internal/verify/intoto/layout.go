package intoto

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Layout is an in-toto layout: who may perform which step, with which artifact rules, until
// when.
type Layout struct {
	Expires     time.Time
	Keys        map[string]*Key // key ID -> key
	Steps       []*Step
	Inspections []*Inspection
	Readme      string
}

// Step is one step of a layout.
type Step struct {
	Name              string
	PubKeys           []string // key IDs of the functionaries
	Threshold         int
	ExpectedCommand   []string
	ExpectedMaterials [][]string
	ExpectedProducts  [][]string
	// Quorum is witnessnet's opt-in quorum mode (step field "witnessnet_quorum": true): the
	// step passes when Threshold distinct functionaries agree on the artifacts, and the
	// functionaries who recorded something else are reported as dissent. Without it, all
	// validly signed links of the step must agree (the reference behaviour).
	Quorum bool
}

// Inspection is declared in a layout. witnessnet does not execute inspections: their
// expected_materials are checked against the final products the verifier supplies.
type Inspection struct {
	Name              string
	Run               []string
	ExpectedMaterials [][]string
	ExpectedProducts  [][]string
}

type wireStep struct {
	Type              string     `json:"_type"`
	Name              string     `json:"name"`
	PubKeys           []string   `json:"pubkeys"`
	Threshold         *int       `json:"threshold"`
	ExpectedCommand   []string   `json:"expected_command"`
	ExpectedMaterials [][]string `json:"expected_materials"`
	ExpectedProducts  [][]string `json:"expected_products"`
	Quorum            bool       `json:"witnessnet_quorum"`
}

type wireInspection struct {
	Type              string     `json:"_type"`
	Name              string     `json:"name"`
	Run               []string   `json:"run"`
	ExpectedMaterials [][]string `json:"expected_materials"`
	ExpectedProducts  [][]string `json:"expected_products"`
}

func layoutFrom(w *wireContent) (*Layout, error) {
	exp, err := time.Parse(time.RFC3339, w.Expires)
	if err != nil {
		return nil, fmt.Errorf("%w: layout expires %q: %v", ErrMalformed, w.Expires, err)
	}
	l := &Layout{Expires: exp, Keys: map[string]*Key{}, Readme: w.Readme}
	for id, raw := range w.Keys {
		k, err := ParseKeyJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("layout key %s: %w", id, err)
		}
		if k.KeyID != id {
			return nil, fmt.Errorf("%w: layout key listed as %s has ID %s", ErrMalformed, id, k.KeyID)
		}
		l.Keys[id] = k
	}
	for _, s := range w.Steps {
		st := &Step{Name: s.Name, PubKeys: s.PubKeys, Threshold: 1, ExpectedCommand: s.ExpectedCommand,
			ExpectedMaterials: s.ExpectedMaterials, ExpectedProducts: s.ExpectedProducts, Quorum: s.Quorum}
		if s.Threshold != nil {
			st.Threshold = *s.Threshold
		}
		l.Steps = append(l.Steps, st)
	}
	for _, i := range w.Inspect {
		l.Inspections = append(l.Inspections, &Inspection{Name: i.Name, Run: i.Run,
			ExpectedMaterials: i.ExpectedMaterials, ExpectedProducts: i.ExpectedProducts})
	}
	return l, nil
}

// Validate checks a layout before use: unique step and inspection names, thresholds between 1
// and the number of distinct functionary keys, every key referenced present, no key listed
// twice in a step (by ID or by material), and every artifact rule well formed.
func (l *Layout) Validate() error {
	names := map[string]bool{}
	for _, s := range l.Steps {
		if s.Name == "" || names[s.Name] {
			return fmt.Errorf("%w: step name %q empty or not unique", ErrInvalidLayout, s.Name)
		}
		names[s.Name] = true
		if s.Threshold < 1 {
			return fmt.Errorf("%w: step %s: threshold %d, want at least 1", ErrInvalidLayout, s.Name, s.Threshold)
		}
		var seen []*Key
		for _, id := range s.PubKeys {
			k, ok := l.Keys[id]
			if !ok {
				return fmt.Errorf("%w: step %s: key %s is not in the layout's keys", ErrInvalidLayout, s.Name, id)
			}
			if slices.ContainsFunc(seen, k.Same) {
				return fmt.Errorf("%w: step %s lists key %s twice", ErrInvalidLayout, s.Name, id)
			}
			seen = append(seen, k)
		}
		if s.Threshold > len(seen) {
			return fmt.Errorf("%w: step %s: threshold %d but %d functionary keys", ErrInvalidLayout, s.Name, s.Threshold, len(seen))
		}
		if err := validateRules(s.ExpectedMaterials, names, l); err != nil {
			return fmt.Errorf("%w: step %s materials: %v", ErrInvalidLayout, s.Name, err)
		}
		if err := validateRules(s.ExpectedProducts, names, l); err != nil {
			return fmt.Errorf("%w: step %s products: %v", ErrInvalidLayout, s.Name, err)
		}
	}
	for _, i := range l.Inspections {
		if i.Name == "" || names[i.Name] {
			return fmt.Errorf("%w: inspection name %q empty or not unique", ErrInvalidLayout, i.Name)
		}
		names[i.Name] = true
	}
	for _, i := range l.Inspections {
		for _, rs := range [][][]string{i.ExpectedMaterials, i.ExpectedProducts} {
			if err := validateRules(rs, names, l); err != nil {
				return fmt.Errorf("%w: inspection %s: %v", ErrInvalidLayout, i.Name, err)
			}
		}
	}
	return nil
}

func validateRules(rules [][]string, _ map[string]bool, _ *Layout) error {
	for _, r := range rules {
		if _, err := parseRule(r); err != nil {
			return err
		}
	}
	return nil
}

// Expired reports whether the layout has expired at now (expires <= now).
func (l *Layout) Expired(now time.Time) bool { return !l.Expires.After(now) }

// Step returns the step named name.
func (l *Layout) Step(name string) (*Step, bool) {
	i := slices.IndexFunc(l.Steps, func(s *Step) bool { return s.Name == name })
	if i < 0 {
		return nil, false
	}
	return l.Steps[i], true
}

// Functionaries returns the keys of a step's functionaries.
func (l *Layout) Functionaries(s *Step) []*Key {
	var out []*Key
	for _, id := range s.PubKeys {
		if k, ok := l.Keys[id]; ok {
			out = append(out, k)
		}
	}
	return out
}

// Substitute returns a copy of the layout with "{NAME}" replaced by params[NAME] in expected
// commands, artifact rules and inspection commands, as in-toto's parameter substitution does.
func (l *Layout) Substitute(params map[string]string) *Layout {
	if len(params) == 0 {
		return l
	}
	sub := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			for k, v := range params {
				s = strings.ReplaceAll(s, "{"+k+"}", v)
			}
			out[i] = s
		}
		return out
	}
	subRules := func(rs [][]string) [][]string {
		out := make([][]string, len(rs))
		for i, r := range rs {
			out[i] = sub(r)
		}
		return out
	}
	c := &Layout{Expires: l.Expires, Keys: maps.Clone(l.Keys), Readme: l.Readme}
	for _, s := range l.Steps {
		n := *s
		n.ExpectedCommand, n.ExpectedMaterials, n.ExpectedProducts = sub(s.ExpectedCommand), subRules(s.ExpectedMaterials), subRules(s.ExpectedProducts)
		c.Steps = append(c.Steps, &n)
	}
	for _, i := range l.Inspections {
		n := *i
		n.Run, n.ExpectedMaterials, n.ExpectedProducts = sub(i.Run), subRules(i.ExpectedMaterials), subRules(i.ExpectedProducts)
		c.Inspections = append(c.Inspections, &n)
	}
	return c
}
