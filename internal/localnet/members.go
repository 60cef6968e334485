package localnet

import (
	"crypto/rand"
	"fmt"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Member is one member's identity: its name, addresses and keys.
type Member struct {
	Name     string
	HTTPAddr string // listen address
	RaftAddr string // address the other members dial
	URL      string // base URL of its HTTP API
	LogSkey  string // signed-note private key named by the origin
	LogVkey  string
	WitSkey  string // signed-note private key named by the member
	WitVkey  string // cosignature/v1 verifier key
}

// NewMember generates a member's keys.
func NewMember(name, origin string) (Member, error) {
	m := Member{Name: name}
	var err error
	if m.LogSkey, m.LogVkey, err = note.GenerateKey(rand.Reader, origin); err != nil {
		return m, err
	}
	var wv string
	if m.WitSkey, wv, err = note.GenerateKey(rand.Reader, name); err != nil {
		return m, err
	}
	if m.WitVkey, err = fnote.VKeyToCosignatureV1(wv); err != nil {
		return m, err
	}
	return m, nil
}

// Quorum is the default quorum for n members: more than two thirds.
func Quorum(n int) int { return 2*n/3 + 1 }

// PolicyText is the network's C2SP tlog-policy: every member's log key, every member's witness
// key with its URL, and a quorum of more than two thirds of the members.
func PolicyText(origin string, members []Member) []byte {
	var b strings.Builder
	k := Quorum(len(members))
	fmt.Fprintf(&b, "# C2SP tlog-policy for the witnessnet log %s.\n", origin)
	fmt.Fprintf(&b, "# A checkpoint is accepted with a signature by one of the log keys and cosignatures\n")
	fmt.Fprintf(&b, "# from %d of the %d members (more than two thirds).\n", k, len(members))
	var names []string
	for _, m := range members {
		fmt.Fprintf(&b, "log %s\n", m.LogVkey)
	}
	for _, m := range members {
		fmt.Fprintf(&b, "witness %s %s %s\n", m.Name, m.WitVkey, m.URL)
		names = append(names, m.Name)
	}
	fmt.Fprintf(&b, "group members %d %s\nquorum members\n", k, strings.Join(names, " "))
	return []byte(b.String())
}

// MembershipText is the genesis membership document: version 1 of the network's governance,
// carrying the policy. Later versions need signatures of a quorum of the members.
func MembershipText(policy []byte) []byte {
	var b strings.Builder
	b.WriteString("witnessnet membership v1\nversion 1\n")
	for _, line := range strings.SplitAfter(string(policy), "\n") {
		if !strings.HasPrefix(line, "#") {
			b.WriteString(line)
		}
	}
	return []byte(b.String())
}
