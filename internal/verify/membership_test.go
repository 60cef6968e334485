package verify

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

type testMembers struct {
	keys   map[string]ed25519.PrivateKey
	policy string // witness lines
	log    string
}

func newMembers(t testing.TB, names ...string) *testMembers {
	tm := &testMembers{keys: map[string]ed25519.PrivateKey{}}
	_, vkey, _ := note.GenerateKey(rand.Reader, "example.org/log")
	tm.log = "log " + vkey + "\n"
	var b strings.Builder
	for _, name := range names {
		skey, wv, _ := note.GenerateKey(rand.Reader, name)
		cv, err := fnote.VKeyToCosignatureV1(wv)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(skey, "+", 5)[4])
		tm.keys[name] = ed25519.NewKeyFromSeed(raw[1:])
		fmt.Fprintf(&b, "witness %s %s\n", name, cv)
	}
	tm.policy = b.String()
	return tm
}

// text is a membership version naming the witnesses in members with a k-of-n quorum.
func (tm *testMembers) text(version uint64, k int, members ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "witnessnet membership v1\nversion %d\n%s", version, tm.log)
	for _, line := range strings.Split(tm.policy, "\n") {
		for _, m := range members {
			if strings.HasPrefix(line, "witness "+m+" ") {
				b.WriteString(line + "\n")
			}
		}
	}
	fmt.Fprintf(&b, "group members %d %s\nquorum members\n", k, strings.Join(members, " "))
	for _, m := range members {
		fmt.Fprintf(&b, "peer %s 12D3KooW%s\n", m, m)
	}
	return []byte(b.String())
}

func (tm *testMembers) sign(t testing.TB, text []byte, signers ...string) []byte {
	var copies [][]byte
	for _, s := range signers {
		c, err := SignMembership(text, s, tm.keys[s])
		if err != nil {
			t.Fatal(err)
		}
		copies = append(copies, c)
	}
	out, err := AddMembershipSignatures(copies...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMembershipVerifyNext(t *testing.T) {
	tm := newMembers(t, "a", "b", "c", "d", "e")
	cur, err := ParseMembershipText(tm.text(1, 3, "a", "b", "c", "d"))
	if err != nil {
		t.Fatal(err)
	}
	if cur.Peers["c"] != "12D3KooWc" || !cur.Policy.Satisfied([]string{"a", "b", "d"}) {
		t.Fatalf("parsed %+v", cur)
	}
	addE := tm.text(2, 4, "a", "b", "c", "d", "e")
	// A cosignature (type 0x04) by a member over the same text is not a membership signature.
	cosigner, _ := fnote.NewSignerForCosignatureV1(mustSkey(t, tm, "c"))
	cosigned, _ := note.Sign(&note.Note{Text: string(addE)}, cosigner)
	tests := []struct {
		name   string
		signed []byte
		ok     bool
	}{
		{"quorum of current members", tm.sign(t, addE, "a", "b", "c"), true},
		{"two of four", tm.sign(t, addE, "a", "b"), false},
		{"the joining member does not count", tm.sign(t, addE, "a", "b", "e"), false},
		{"one member signing twice", tm.sign(t, addE, "a", "b", "b"), false},
		{"version skipped", tm.sign(t, tm.text(3, 4, "a", "b", "c", "d", "e"), "a", "b", "c"), false},
		{"version replayed", tm.sign(t, tm.text(1, 2, "a", "b", "c", "d"), "a", "b", "c"), false},
		{"cosignature is not a membership signature", mustMerge(t, tm.sign(t, addE, "a", "b"), cosigned), false},
		{"tampered text", []byte(strings.Replace(string(tm.sign(t, addE, "a", "b", "c")), "members 4", "members 1", 1)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next, _, err := cur.VerifyNext(tc.signed)
			if tc.ok != (err == nil) {
				t.Fatalf("VerifyNext: %v", err)
			}
			if err != nil && !errors.Is(err, ErrMembership) {
				t.Fatalf("error %v is not ErrMembership", err)
			}
			if tc.ok && (next.Version != 2 || next.Peers["e"] != "12D3KooWe") {
				t.Fatalf("next %+v", next)
			}
		})
	}
	// Lowering the quorum needs the current quorum too.
	lower := tm.text(2, 1, "a", "b", "c", "d")
	if _, _, err := cur.VerifyNext(tm.sign(t, lower, "a")); err == nil {
		t.Fatal("one member lowered the quorum")
	}
}

func mustSkey(t testing.TB, tm *testMembers, name string) string {
	k := tm.keys[name]
	vkey, _ := note.NewEd25519VerifierKey(name, k.Public().(ed25519.PublicKey))
	hash := strings.SplitN(vkey, "+", 3)[1]
	return "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, k.Seed()...))
}

func mustMerge(t testing.TB, a, b []byte) []byte {
	out, err := AddMembershipSignatures(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseMembershipTextRejects(t *testing.T) {
	tm := newMembers(t, "a")
	good := string(tm.text(1, 1, "a"))
	for name, text := range map[string]string{
		"header":          strings.Replace(good, "membership v1", "membership v2", 1),
		"version zero":    strings.Replace(good, "version 1", "version 0", 1),
		"version padded":  strings.Replace(good, "version 1", "version 01", 1),
		"peer of nobody":  good + "peer z 12D3KooWz\n",
		"peer twice":      good + "peer a 12D3KooWa\n",
		"raft of nobody":  good + "raft z 127.0.0.1:1\n",
		"raft twice":      good + "raft a 127.0.0.1:1\nraft a 127.0.0.1:2\n",
		"raft line short": good + "raft a\n",
		"no quorum":       strings.Replace(good, "quorum members\n", "", 1),
		"bad policy line": good + "witness\n",
	} {
		if _, err := ParseMembershipText([]byte(text)); !errors.Is(err, ErrMembership) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func FuzzParseMembershipText(f *testing.F) {
	tm := newMembers(f, "a", "b")
	f.Add(tm.text(1, 2, "a", "b"))
	f.Fuzz(func(t *testing.T, text []byte) {
		m, err := ParseMembershipText(text)
		if err != nil {
			return
		}
		again, err := ParseMembershipText(MarshalMembership(m.Version, m.Policy, m.Peers, m.Raft))
		if err != nil || again.Version != m.Version || len(again.Peers) != len(m.Peers) || len(again.Raft) != len(m.Raft) {
			t.Fatalf("re-parse of the marshalled membership: %v", err)
		}
	})
}
