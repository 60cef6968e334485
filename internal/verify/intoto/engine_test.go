package intoto

import (
	"errors"
	"testing"
	"time"
)

type chain struct {
	owner, dev, rb1, rb2, rb3 *functionary
}

func newChain(t *testing.T) *chain {
	return &chain{newFunctionary(t), newFunctionary(t), newFunctionary(t), newFunctionary(t), newFunctionary(t)}
}

func keysOf(fs ...*functionary) map[string]any {
	m := map[string]any{}
	for _, f := range fs {
		m[f.key.KeyID] = f.key.JSON()
	}
	return m
}

// layoutDoc is a two-step chain: "build" by dev, "rebuild" by two of three rebuilders, which
// must produce the same app as build did.
func (c *chain) layoutDoc(mod func(rebuild map[string]any)) map[string]any {
	rebuild := map[string]any{
		"_type": "step", "name": "rebuild", "threshold": 2, "expected_command": []string{},
		"pubkeys":            []string{c.rb1.key.KeyID, c.rb2.key.KeyID, c.rb3.key.KeyID},
		"expected_materials": [][]string{{"MATCH", "src/*", "WITH", "MATERIALS", "FROM", "build"}, {"DISALLOW", "*"}},
		"expected_products":  [][]string{{"MATCH", "{APP}", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}},
	}
	if mod != nil {
		mod(rebuild)
	}
	return map[string]any{
		"_type": "layout", "expires": "2030-01-01T00:00:00Z", "readme": "",
		"keys": keysOf(c.dev, c.rb1, c.rb2, c.rb3),
		"steps": []any{
			map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{c.dev.key.KeyID}, "expected_command": []string{},
				"expected_materials": [][]string{{"ALLOW", "src/*"}, {"DISALLOW", "*"}},
				"expected_products":  [][]string{{"REQUIRE", "{APP}"}, {"CREATE", "{APP}"}, {"DISALLOW", "*"}}},
			rebuild,
		},
		"inspect": []any{},
	}
}

func linkDoc(name string, products map[string]string) map[string]any {
	p := map[string]any{}
	for n, d := range products {
		p[n] = map[string]string{"sha256": d}
	}
	return map[string]any{
		"_type": "link", "name": name, "command": []string{"make"},
		"materials":  map[string]any{"src/main.c": map[string]string{"sha256": "aa"}},
		"products":   p,
		"byproducts": map[string]any{}, "environment": map[string]any{},
	}
}

var app = map[string]string{"app": "bb"}

func (c *chain) input(t *testing.T, layout map[string]any, links ...[]byte) VerifyInput {
	in := VerifyInput{Layout: mustParse(t, metablock(t, layout, c.owner)), LayoutKeys: []*Key{c.owner.key},
		Now: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Params: map[string]string{"APP": "app"}}
	for _, l := range links {
		in.Links = append(in.Links, mustParse(t, l))
	}
	return in
}

func TestThresholdsAndRules(t *testing.T) {
	c := newChain(t)
	build := dsse(t, linkDoc("build", app), c.dev)
	other := map[string]string{"app": "cc"}
	tests := []struct {
		name   string
		layout func(map[string]any)
		links  [][]byte
		want   error
		check  func(*testing.T, *Report)
	}{
		{name: "two rebuilders, separate links", links: [][]byte{build, dsse(t, linkDoc("rebuild", app), c.rb1), metablock(t, linkDoc("rebuild", app), c.rb2)}},
		{name: "one link co-signed by two", links: [][]byte{build, dsse(t, linkDoc("rebuild", app), c.rb1, c.rb3)}},
		{name: "threshold not met", links: [][]byte{build, dsse(t, linkDoc("rebuild", app), c.rb1)}, want: ErrThresholdNotMet},
		{name: "one rebuilder signing twice counts once", links: [][]byte{build, dsse(t, linkDoc("rebuild", app), c.rb1), metablock(t, linkDoc("rebuild", app), c.rb1)}, want: ErrThresholdNotMet},
		{name: "unequal threshold links", links: [][]byte{build, dsse(t, linkDoc("rebuild", app), c.rb1, c.rb2), dsse(t, linkDoc("rebuild", other), c.rb3)}, want: ErrLinksDisagree},
		{name: "quorum mode reports dissent", layout: func(s map[string]any) { s["witnessnet_quorum"] = true },
			links: [][]byte{build, dsse(t, linkDoc("rebuild", app), c.rb1, c.rb2), dsse(t, linkDoc("rebuild", other), c.rb3)},
			check: func(t *testing.T, r *Report) {
				if d := r.Steps[1].Dissent; len(d) != 1 || len(d[0].Functionaries) != 1 || d[0].Functionaries[0] != c.rb3.key.KeyID {
					t.Fatalf("dissent %+v", d)
				}
			}},
		{name: "quorum mode still needs k agreeing", layout: func(s map[string]any) { s["witnessnet_quorum"] = true },
			links: [][]byte{build, dsse(t, linkDoc("rebuild", app), c.rb1), dsse(t, linkDoc("rebuild", other), c.rb3)}, want: ErrThresholdNotMet},
		{name: "link by a key that is not a functionary of the step", links: [][]byte{build, dsse(t, linkDoc("rebuild", app), c.rb1, c.dev)}, want: ErrThresholdNotMet},
		{name: "missing link", links: [][]byte{build}, want: ErrMissingLink},
		{name: "rule violation", links: [][]byte{dsse(t, linkDoc("build", map[string]string{"app": "bb", "extra": "dd"}), c.dev), dsse(t, linkDoc("rebuild", app), c.rb1, c.rb2)}, want: ErrRuleViolation},
		{name: "rebuild does not match build", links: [][]byte{build, dsse(t, linkDoc("rebuild", other), c.rb1, c.rb2)}, want: ErrRuleViolation},
		{name: "REQUIRE missing", links: [][]byte{dsse(t, linkDoc("build", nil), c.dev), dsse(t, linkDoc("rebuild", nil), c.rb1, c.rb2)}, want: ErrRequireMissing},
		{name: "threshold 0", layout: func(s map[string]any) { s["threshold"] = 0 }, links: [][]byte{build}, want: ErrInvalidLayout},
		{name: "threshold above the keys", layout: func(s map[string]any) { s["threshold"] = 4 }, links: [][]byte{build}, want: ErrInvalidLayout},
		{name: "a key listed twice", layout: func(s map[string]any) { s["pubkeys"] = []string{c.rb1.key.KeyID, c.rb1.key.KeyID, c.rb2.key.KeyID} }, links: [][]byte{build}, want: ErrInvalidLayout},
		{name: "a rule that does not parse", layout: func(s map[string]any) { s["expected_products"] = [][]string{{"MATCH", "x", "FROM"}} }, links: [][]byte{build}, want: ErrInvalidLayout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Verify(c.input(t, c.layoutDoc(tc.layout), tc.links...))
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.check != nil {
				tc.check(t, rep)
			}
		})
	}
}

func TestSameKeyUnderTwoIDs(t *testing.T) {
	c := newChain(t)
	doc := c.layoutDoc(nil)
	// The same Ed25519 key, described without keyid_hash_algorithms, has another key ID.
	alias := c.rb1.key.JSON()
	delete(alias, "keyid_hash_algorithms")
	delete(alias, "keyid")
	raw, _ := canonicalValue(alias)
	ak, err := ParseKeyJSON(raw)
	if err != nil || ak.KeyID == c.rb1.key.KeyID {
		t.Fatalf("alias: %v", err)
	}
	alias["keyid"] = ak.KeyID
	doc["keys"].(map[string]any)[ak.KeyID] = alias
	doc["steps"].([]any)[1].(map[string]any)["pubkeys"] = []string{c.rb1.key.KeyID, ak.KeyID}
	_, err = Verify(c.input(t, doc, dsse(t, linkDoc("build", app), c.dev)))
	if !errors.Is(err, ErrInvalidLayout) {
		t.Fatalf("got %v, want ErrInvalidLayout", err)
	}
}

func TestMergeSignatures(t *testing.T) {
	c := newChain(t)
	for _, sign := range []func(testing.TB, any, ...*functionary) []byte{dsse, metablock} {
		doc := linkDoc("rebuild", app)
		a, b := sign(t, doc, c.rb1), sign(t, doc, c.rb2)
		ab, err := MergeSignatures(a, b)
		if err != nil {
			t.Fatal(err)
		}
		ba, _ := MergeSignatures(b, a)
		again, _ := MergeSignatures(ab, b)
		if string(ab) != string(ba) || string(ab) != string(again) {
			t.Fatal("merging is not canonical")
		}
		m := mustParse(t, ab)
		if got := m.Signers([]*Key{c.rb1.key, c.rb2.key, c.rb3.key}); len(got) != 2 {
			t.Fatalf("merged envelope has %d valid signers", len(got))
		}
		if _, err := MergeSignatures(a, sign(t, linkDoc("rebuild", map[string]string{"app": "x"}), c.rb2)); err == nil {
			t.Fatal("merged envelopes over different payloads")
		}
	}
}

func TestSublayout(t *testing.T) {
	c := newChain(t)
	subOwner := newFunctionary(t)
	sub := map[string]any{
		"_type": "layout", "expires": "2030-01-01T00:00:00Z", "keys": keysOf(c.dev),
		"steps": []any{map[string]any{"_type": "step", "name": "compile", "threshold": 1, "pubkeys": []string{c.dev.key.KeyID},
			"expected_materials": [][]string{}, "expected_products": [][]string{{"ALLOW", "*"}}}},
		"inspect": []any{},
	}
	root := map[string]any{
		"_type": "layout", "expires": "2030-01-01T00:00:00Z", "keys": keysOf(subOwner),
		"steps": []any{map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{subOwner.key.KeyID},
			"expected_materials": [][]string{}, "expected_products": [][]string{{"REQUIRE", "app"}}}},
		"inspect": []any{},
	}
	in := c.input(t, root)
	in.Sublayouts = map[string]Sublayout{"build": {Layout: mustParse(t, dsse(t, sub, subOwner)), Links: []*Metadata{mustParse(t, dsse(t, linkDoc("compile", app), c.dev))}}}
	rep, err := Verify(in)
	if err != nil {
		t.Fatalf("sublayout: %v", err)
	}
	if rep.Steps[0].Sublayout == nil {
		t.Fatal("no sublayout report")
	}
	in.Sublayouts["build"] = Sublayout{Layout: mustParse(t, dsse(t, sub, c.rb1)), Links: in.Sublayouts["build"].Links}
	if _, err := Verify(in); !errors.Is(err, ErrThresholdNotMet) {
		t.Fatalf("sublayout signed by a stranger: %v", err)
	}
}
