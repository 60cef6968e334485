package intoto

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// rule is a parsed artifact rule.
type rule struct {
	op        string // MATCH CREATE DELETE MODIFY ALLOW DISALLOW REQUIRE
	pattern   string
	srcPrefix string
	dstType   string // MATERIALS or PRODUCTS (MATCH)
	dstPrefix string
	dstStep   string
	text      string
}

// parseRule parses one artifact rule:
//
//	MATCH <pattern> [IN <prefix>] WITH (MATERIALS|PRODUCTS) [IN <prefix>] FROM <step>
//	CREATE|DELETE|MODIFY|ALLOW|DISALLOW|REQUIRE <pattern>
func parseRule(r []string) (rule, error) {
	out := rule{text: strings.Join(r, " ")}
	if len(r) == 0 {
		return out, fmt.Errorf("%w: empty rule", ErrMalformed)
	}
	out.op = strings.ToUpper(r[0])
	switch out.op {
	case "CREATE", "DELETE", "MODIFY", "ALLOW", "DISALLOW", "REQUIRE":
		if len(r) != 2 {
			return out, fmt.Errorf("%w: rule %q: want %s <pattern>", ErrMalformed, out.text, out.op)
		}
		out.pattern = r[1]
		return out, nil
	case "MATCH":
	default:
		return out, fmt.Errorf("%w: rule %q: unknown rule %q", ErrMalformed, out.text, r[0])
	}
	// MATCH pattern [IN prefix] WITH type [IN prefix] FROM step
	rest := r[1:]
	if len(rest) < 5 {
		return out, fmt.Errorf("%w: rule %q: want MATCH <pattern> [IN <prefix>] WITH (MATERIALS|PRODUCTS) [IN <prefix>] FROM <step>", ErrMalformed, out.text)
	}
	out.pattern, rest = rest[0], rest[1:]
	if strings.EqualFold(rest[0], "IN") {
		out.srcPrefix, rest = rest[1], rest[2:]
	}
	if len(rest) < 4 || !strings.EqualFold(rest[0], "WITH") {
		return out, fmt.Errorf("%w: rule %q: want WITH (MATERIALS|PRODUCTS)", ErrMalformed, out.text)
	}
	out.dstType, rest = strings.ToUpper(rest[1]), rest[2:]
	if out.dstType != "MATERIALS" && out.dstType != "PRODUCTS" {
		return out, fmt.Errorf("%w: rule %q: WITH %s, want MATERIALS or PRODUCTS", ErrMalformed, out.text, out.dstType)
	}
	if len(rest) >= 2 && strings.EqualFold(rest[0], "IN") {
		out.dstPrefix, rest = rest[1], rest[2:]
	}
	if len(rest) != 2 || !strings.EqualFold(rest[0], "FROM") || rest[1] == "" {
		return out, fmt.Errorf("%w: rule %q: want FROM <step>", ErrMalformed, out.text)
	}
	out.dstStep = rest[1]
	return out, nil
}

var fnmatchCache sync.Map // pattern -> *regexp.Regexp

// fnmatch is Python's fnmatch.fnmatch as the reference tools use it: "*" matches any run of
// characters including "/", "?" one character, "[seq]" and "[!seq]" a class.
func fnmatch(pattern, name string) bool {
	if re, ok := fnmatchCache.Load(pattern); ok {
		return re.(*regexp.Regexp).MatchString(name)
	}
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(pattern) && pattern[j] == '!' {
				j++
			}
			if j < len(pattern) && pattern[j] == ']' {
				j++
			}
			for j < len(pattern) && pattern[j] != ']' {
				j++
			}
			if j >= len(pattern) {
				b.WriteString(`\[`)
				continue
			}
			class := pattern[i+1 : j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		re = regexp.MustCompile(`\A` + regexp.QuoteMeta(pattern) + `\z`)
	}
	fnmatchCache.Store(pattern, re)
	return re.MatchString(name)
}

// RuleResult reports what one rule did.
type RuleResult struct {
	Rule     string   `json:"rule"`
	Consumed []string `json:"consumed,omitempty"`
}

// artifactCheck applies a step's rules to one side (materials or products) of its link.
type artifactCheck struct {
	name      string               // step or inspection name, for errors
	side      string               // "materials" or "products"
	artifacts map[string]DigestSet // the side being checked
	materials map[string]DigestSet // the link's materials and products, for CREATE/DELETE/MODIFY
	products  map[string]DigestSet
	links     map[string]*Link // step name -> the link standing for that step
}

// apply runs the rules in order over a queue of the artifacts; DISALLOW fails on anything
// still queued that it matches, REQUIRE on a name not (or no longer) queued. Artifacts left over at
// the end are allowed, as in the reference implementations.
func (c *artifactCheck) apply(rules [][]string) ([]RuleResult, error) {
	queue := map[string]bool{}
	for n := range c.artifacts {
		queue[n] = true
	}
	var results []RuleResult
	for _, raw := range rules {
		r, err := parseRule(raw)
		if err != nil {
			return results, err
		}
		res := RuleResult{Rule: r.text}
		switch r.op {
		case "REQUIRE":
			// As in both reference implementations, REQUIRE looks at the artifacts not yet
			// consumed by an earlier rule.
			if !queue[r.pattern] {
				return append(results, res), fmt.Errorf("%w: %s %s: %q not found", ErrRequireMissing, c.name, c.side, r.pattern)
			}
		case "DISALLOW":
			for _, n := range sortedKeys(queue) {
				if fnmatch(r.pattern, n) {
					return append(results, res), fmt.Errorf("%w: %s %s: %q is disallowed by %q", ErrRuleViolation, c.name, c.side, n, r.text)
				}
			}
		default:
			for _, n := range sortedKeys(queue) {
				if c.consumes(r, n) {
					res.Consumed = append(res.Consumed, n)
					delete(queue, n)
				}
			}
		}
		results = append(results, res)
	}
	return results, nil
}

func (c *artifactCheck) consumes(r rule, name string) bool {
	switch r.op {
	case "ALLOW":
		return fnmatch(r.pattern, name)
	case "CREATE":
		_, inM := c.materials[name]
		return c.side == "products" && !inM && fnmatch(r.pattern, name)
	case "DELETE":
		_, inP := c.products[name]
		return c.side == "materials" && !inP && fnmatch(r.pattern, name)
	case "MODIFY":
		m, inM := c.materials[name]
		p, inP := c.products[name]
		return inM && inP && !maps.Equal(m, p) && fnmatch(r.pattern, name)
	case "MATCH":
		return c.matches(r, name)
	}
	return false
}

// matches implements MATCH: the artifact, relative to the source prefix, matches the pattern,
// and the destination step recorded the same name under the destination prefix with the same
// digests.
func (c *artifactCheck) matches(r rule, name string) bool {
	rel := name
	if r.srcPrefix != "" {
		p := strings.TrimSuffix(r.srcPrefix, "/") + "/"
		var ok bool
		if rel, ok = strings.CutPrefix(name, p); !ok {
			return false
		}
	}
	if !fnmatch(r.pattern, rel) {
		return false
	}
	dst, ok := c.links[r.dstStep]
	if !ok {
		return false
	}
	set := dst.Materials
	if r.dstType == "PRODUCTS" {
		set = dst.Products
	}
	dstName := rel
	if r.dstPrefix != "" {
		dstName = strings.TrimSuffix(r.dstPrefix, "/") + "/" + rel
	}
	d, ok := set[dstName]
	return ok && len(d) > 0 && maps.Equal(d, c.artifacts[name])
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
