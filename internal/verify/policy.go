package verify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Sentinel errors for policies and checkpoints.
var (
	// ErrPolicy means a policy file does not parse or is inconsistent.
	ErrPolicy = errors.New("invalid policy")
	// ErrQuorumNotMet means a checkpoint lacks the cosignatures its policy asks for.
	ErrQuorumNotMet = errors.New("quorum not met")
	// ErrNoLogSignature means a checkpoint carries no valid signature by a policy log key.
	ErrNoLogSignature = errors.New("no valid log signature")
)

// Policy is a C2SP tlog-policy: which logs, which witnesses, and the quorum of witnesses that
// must cosign a checkpoint.
//
//	log <vkey> [<url>]
//	witness <name> <vkey> [<url>]
//	group <name> <k|all|any> <member>...
//	quorum <name>
type Policy struct {
	Logs      []PolicyLog
	Witnesses []PolicyWitness
	Groups    []PolicyGroup
	Quorum    string // a witness or group name, or "none"
}

// PolicyLog is a log key line.
type PolicyLog struct {
	VKey     string
	URL      string
	Verifier note.Verifier
}

// PolicyWitness is a witness line; its key is a cosignature/v1 verifier key.
type PolicyWitness struct {
	Name     string
	VKey     string
	URL      string
	Verifier note.Verifier
}

// PolicyGroup is a group line: K of Members (witnesses or earlier groups).
type PolicyGroup struct {
	Name    string
	K       int
	KText   string // as written: a number, "all" or "any"
	Members []string
}

// ParsePolicy parses and checks a policy.
func ParsePolicy(data []byte) (*Policy, error) {
	p := &Policy{}
	names := map[string]bool{"none": true}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := p.parseLine(f, names); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrPolicy, lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	if len(p.Logs) == 0 {
		return nil, fmt.Errorf("%w: no log line", ErrPolicy)
	}
	if p.Quorum == "" {
		return nil, fmt.Errorf("%w: no quorum line", ErrPolicy)
	}
	return p, nil
}

func (p *Policy) parseLine(f []string, names map[string]bool) error {
	switch f[0] {
	case "log":
		if len(f) < 2 || len(f) > 3 {
			return errors.New("want: log <vkey> [<url>]")
		}
		v, err := note.NewVerifier(f[1])
		if err != nil {
			return fmt.Errorf("log key: %v", err)
		}
		p.Logs = append(p.Logs, PolicyLog{VKey: f[1], URL: at(f, 2), Verifier: v})
	case "witness":
		if len(f) < 3 || len(f) > 4 {
			return errors.New("want: witness <name> <vkey> [<url>]")
		}
		if names[f[1]] {
			return fmt.Errorf("name %q defined twice", f[1])
		}
		v, err := fnote.NewVerifierForCosignatureV1(f[2])
		if err != nil {
			return fmt.Errorf("witness %s key: %v", f[1], err)
		}
		names[f[1]] = true
		p.Witnesses = append(p.Witnesses, PolicyWitness{Name: f[1], VKey: f[2], URL: at(f, 3), Verifier: v})
	case "group":
		return p.parseGroup(f, names)
	case "quorum":
		if len(f) != 2 || p.Quorum != "" {
			return errors.New("want exactly one: quorum <name>")
		}
		if !names[f[1]] {
			return fmt.Errorf("quorum names undefined %q", f[1])
		}
		p.Quorum = f[1]
	default:
		return fmt.Errorf("unknown keyword %q", f[0])
	}
	return nil
}

func (p *Policy) parseGroup(f []string, names map[string]bool) error {
	if len(f) < 4 {
		return errors.New("want: group <name> <k|all|any> <member>...")
	}
	g := PolicyGroup{Name: f[1], KText: f[2], Members: f[3:]}
	if names[g.Name] {
		return fmt.Errorf("name %q defined twice", g.Name)
	}
	seen := map[string]bool{}
	for _, m := range g.Members {
		if !names[m] || m == "none" {
			return fmt.Errorf("group %s: undefined member %q", g.Name, m)
		}
		if seen[m] {
			return fmt.Errorf("group %s: member %q listed twice", g.Name, m)
		}
		seen[m] = true
	}
	switch g.KText {
	case "all":
		g.K = len(g.Members)
	case "any":
		g.K = 1
	default:
		k, err := strconv.Atoi(g.KText)
		if err != nil || k < 1 || k > len(g.Members) || g.KText != strconv.Itoa(k) {
			return fmt.Errorf("group %s: threshold %q must be 1..%d, all or any", g.Name, g.KText, len(g.Members))
		}
		g.K = k
	}
	names[g.Name] = true
	p.Groups = append(p.Groups, g)
	return nil
}

func at(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// Satisfied reports whether cosignatures by the named witnesses meet the quorum.
func (p *Policy) Satisfied(witnesses []string) bool {
	have := map[string]bool{}
	for _, w := range witnesses {
		have[w] = true
	}
	return p.satisfied(p.Quorum, have)
}

func (p *Policy) satisfied(name string, have map[string]bool) bool {
	if name == "none" {
		return true
	}
	for _, g := range p.Groups {
		if g.Name == name {
			n := 0
			for _, m := range g.Members {
				if p.satisfied(m, have) {
					n++
				}
			}
			return n >= g.K
		}
	}
	return have[name]
}

// LogVerifiers returns the verifiers of the policy's log keys.
func (p *Policy) LogVerifiers() []note.Verifier {
	out := make([]note.Verifier, len(p.Logs))
	for i, l := range p.Logs {
		out[i] = l.Verifier
	}
	return out
}

// WitnessVerifiers returns the cosignature/v1 verifiers of the policy's witnesses.
func (p *Policy) WitnessVerifiers() []note.Verifier {
	out := make([]note.Verifier, len(p.Witnesses))
	for i, w := range p.Witnesses {
		out[i] = w.Verifier
	}
	return out
}

// Witness returns the witness line of name.
func (p *Policy) Witness(name string) (PolicyWitness, bool) {
	i := slices.IndexFunc(p.Witnesses, func(w PolicyWitness) bool { return w.Name == name })
	if i < 0 {
		return PolicyWitness{}, false
	}
	return p.Witnesses[i], true
}

// Marshal writes the policy in its text form; ParsePolicy(Marshal()) gives the same policy.
func (p *Policy) Marshal() []byte {
	var b bytes.Buffer
	for _, l := range p.Logs {
		b.WriteString(strings.TrimSpace("log " + l.VKey + " " + l.URL))
		b.WriteByte('\n')
	}
	for _, w := range p.Witnesses {
		b.WriteString(strings.TrimSpace("witness " + w.Name + " " + w.VKey + " " + w.URL))
		b.WriteByte('\n')
	}
	for _, g := range p.Groups {
		fmt.Fprintf(&b, "group %s %s %s\n", g.Name, g.KText, strings.Join(g.Members, " "))
	}
	fmt.Fprintf(&b, "quorum %s\n", p.Quorum)
	return b.Bytes()
}
