package verify

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrMembership means a membership document does not parse, or a new version is not signed by
// enough members of the current one.
var ErrMembership = errors.New("invalid membership")

// membershipHeader opens every membership document.
const membershipHeader = "witnessnet membership v1"

// Membership is the network's governance document: which logs and witnesses there are, the
// quorum a checkpoint needs, and each member's libp2p peer ID. It is a signed note whose text is
//
//	witnessnet membership v1
//	version <n>
//	<C2SP tlog-policy lines: log, witness, group, quorum>
//	peer <witness name> <peer ID>
//	raft <witness name> <raft address>
//
// The peer and raft lines are optional. When every witness has a raft address (its peer ID with
// libp2p, a raft line with TCP), raft's voters follow the document: the leader adds and removes
// voters to match each version it applies.
//
// Members sign it with Ed25519 note signatures made by their witness keys (signature type 0x01,
// so they can never be mistaken for cosignatures, type 0x04). Version n+1 takes effect only when
// signed by members of version n that satisfy version n's quorum: no raft configuration change,
// local setting or single member can add a cosigner or lower the quorum.
type Membership struct {
	Version uint64
	Policy  *Policy
	Peers   map[string]string // witness name -> peer ID
	Raft    map[string]string // witness name -> raft address (TCP transport)
	Text    []byte            // the text the members signed
}

// ParseMembershipText parses the unsigned text of a membership document.
func ParseMembershipText(text []byte) (*Membership, error) {
	m := &Membership{Peers: map[string]string{}, Raft: map[string]string{}, Text: text}
	var policy bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		switch {
		case line == 1:
			if sc.Text() != membershipHeader {
				return nil, fmt.Errorf("%w: first line must be %q", ErrMembership, membershipHeader)
			}
		case line == 2:
			if len(f) != 2 || f[0] != "version" {
				return nil, fmt.Errorf("%w: second line must be: version <n>", ErrMembership)
			}
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil || v == 0 || f[1] != strconv.FormatUint(v, 10) {
				return nil, fmt.Errorf("%w: version %q", ErrMembership, f[1])
			}
			m.Version = v
		case len(f) > 0 && f[0] == "peer":
			if len(f) != 3 {
				return nil, fmt.Errorf("%w: line %d: want: peer <witness name> <peer ID>", ErrMembership, line)
			}
			if _, dup := m.Peers[f[1]]; dup {
				return nil, fmt.Errorf("%w: line %d: second peer line for %s", ErrMembership, line, f[1])
			}
			m.Peers[f[1]] = f[2]
		case len(f) > 0 && f[0] == "raft":
			if len(f) != 3 {
				return nil, fmt.Errorf("%w: line %d: want: raft <witness name> <address>", ErrMembership, line)
			}
			if _, dup := m.Raft[f[1]]; dup {
				return nil, fmt.Errorf("%w: line %d: second raft line for %s", ErrMembership, line, f[1])
			}
			m.Raft[f[1]] = f[2]
		default:
			policy.WriteString(sc.Text())
			policy.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMembership, err)
	}
	if m.Version == 0 {
		return nil, fmt.Errorf("%w: no version", ErrMembership)
	}
	p, err := ParsePolicy(policy.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMembership, err)
	}
	m.Policy = p
	for name := range m.Peers {
		if _, ok := p.Witness(name); !ok {
			return nil, fmt.Errorf("%w: peer line for %s, which is not a witness", ErrMembership, name)
		}
	}
	for name := range m.Raft {
		if _, ok := p.Witness(name); !ok {
			return nil, fmt.Errorf("%w: raft line for %s, which is not a witness", ErrMembership, name)
		}
	}
	return m, nil
}

// MarshalMembership renders the text of a membership document.
func MarshalMembership(version uint64, p *Policy, peers, raftAddrs map[string]string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nversion %d\n", membershipHeader, version)
	b.Write(p.Marshal())
	for _, kind := range []struct {
		word  string
		lines map[string]string
	}{{"peer", peers}, {"raft", raftAddrs}} {
		names := make([]string, 0, len(kind.lines))
		for n := range kind.lines {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(&b, "%s %s %s\n", kind.word, n, kind.lines[n])
		}
	}
	return b.Bytes()
}

// RaftAddresses returns every witness's raft address, taken by addr from the document (a raft
// line, or the peer ID with libp2p), in the policy's order; ok is false unless every witness
// has one, and then raft's voters do not follow the document.
func (m *Membership) RaftAddresses(addr func(m *Membership, name string) (string, bool)) (ids, addrs []string, ok bool) {
	for _, w := range m.Policy.Witnesses {
		a, found := addr(m, w.Name)
		if !found || a == "" {
			return nil, nil, false
		}
		ids, addrs = append(ids, w.Name), append(addrs, a)
	}
	return ids, addrs, len(ids) > 0
}

// memberVerifiers are Ed25519 note verifiers, one per witness of p, made from the witness keys.
func memberVerifiers(p *Policy) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, w := range p.Witnesses {
		pub, err := witnessKey(w.VKey)
		if err != nil {
			return nil, fmt.Errorf("witness %s: %w", w.Name, err)
		}
		vkey, err := note.NewEd25519VerifierKey(w.Name, pub)
		if err != nil {
			return nil, err
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// witnessKey extracts the Ed25519 key of a signed-note verifier key.
func witnessKey(vkey string) (ed25519.PublicKey, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("verifier key: want name+hash+key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || (raw[0] != 0x01 && raw[0] != 0x04) {
		return nil, errors.New("verifier key: want an Ed25519 key")
	}
	return ed25519.PublicKey(raw[1:]), nil
}

// Signers returns the names of the witnesses of m whose signatures on signed verify, and the
// membership the note carries.
func (m *Membership) signers(signed []byte) (*Membership, []string, error) {
	vs, err := memberVerifiers(m.Policy)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMembership, err)
	}
	n, err := note.Open(signed, vs)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return nil, nil, fmt.Errorf("%w: %v", ErrMembership, err)
		}
		n = unverified.Note
	}
	next, err := ParseMembershipText([]byte(n.Text))
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, s := range n.Sigs {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return next, slices.Compact(names), nil
}

// VerifyNext checks a signed proposal for the next version: it must be version m.Version+1 and
// carry valid signatures of m's witnesses that satisfy m's quorum. It returns the new membership
// and the names of the members who signed.
func (m *Membership) VerifyNext(signed []byte) (*Membership, []string, error) {
	next, names, err := m.signers(signed)
	if err != nil {
		return nil, nil, err
	}
	if next.Version != m.Version+1 {
		return nil, names, fmt.Errorf("%w: version %d does not follow %d", ErrMembership, next.Version, m.Version)
	}
	if !m.Policy.Satisfied(names) {
		return nil, names, fmt.Errorf("%w: signed by %v, which does not satisfy the quorum of version %d", ErrMembership, names, m.Version)
	}
	return next, names, nil
}

// SignMembership signs membership text as one member: an Ed25519 note signature by the member's
// witness key under the member's witness name. Signatures from several members are combined by
// concatenating their signature lines (AddMembershipSignatures).
func SignMembership(text []byte, name string, key ed25519.PrivateKey) ([]byte, error) {
	vkey, err := note.NewEd25519VerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(text)}, memberSigner{v: v, key: key})
}

type memberSigner struct {
	v   note.Verifier
	key ed25519.PrivateKey
}

func (s memberSigner) Name() string                    { return s.v.Name() }
func (s memberSigner) KeyHash() uint32                 { return s.v.KeyHash() }
func (s memberSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// AddMembershipSignatures merges the signature lines of several signed copies of one text.
func AddMembershipSignatures(copies ...[]byte) ([]byte, error) {
	if len(copies) == 0 {
		return nil, fmt.Errorf("%w: nothing to merge", ErrMembership)
	}
	text, _, ok := bytes.Cut(copies[0], []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: not a signed note", ErrMembership)
	}
	seen := map[string]bool{}
	out := append(bytes.Clone(text), '\n', '\n')
	for _, c := range copies {
		t, sigs, ok := bytes.Cut(c, []byte("\n\n"))
		if !ok || !bytes.Equal(t, text) {
			return nil, fmt.Errorf("%w: copies sign different texts", ErrMembership)
		}
		for _, line := range strings.SplitAfter(string(sigs), "\n") {
			if line != "" && !seen[line] {
				seen[line] = true
				out = append(out, line...)
			}
		}
	}
	return out, nil
}
