package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/verify"
)

// membershipTexts makes versions 1 (3-of-3) and 2 (2-of-3) of a three-member network.
func membershipTexts(t *testing.T) (v1, v2 []byte, keys map[string]ed25519.PrivateKey) {
	keys = map[string]ed25519.PrivateKey{}
	_, logV, _ := note.GenerateKey(rand.Reader, "example.org/log")
	var w strings.Builder
	for _, name := range []string{"a", "b", "c"} {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		vk, _ := note.NewEd25519VerifierKey(name, pub)
		cv, err := fnote.VKeyToCosignatureV1(vk)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = priv
		fmt.Fprintf(&w, "witness %s %s\n", name, cv)
	}
	text := func(v, k int) []byte {
		return fmt.Appendf(nil, "witnessnet membership v1\nversion %d\nlog %s\n%sgroup members %d a b c\nquorum members\n", v, logV, w.String(), k)
	}
	return text(1, 3), text(2, 2), keys
}

func signMembership(t *testing.T, text []byte, keys map[string]ed25519.PrivateKey, signers ...string) []byte {
	var copies [][]byte
	for _, s := range signers {
		c, err := verify.SignMembership(text, s, keys[s])
		if err != nil {
			t.Fatal(err)
		}
		copies = append(copies, c)
	}
	out, err := verify.AddMembershipSignatures(copies...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMembershipChanges(t *testing.T) {
	v1, v2, keys := membershipTexts(t)
	path := filepath.Join(t.TempDir(), "state.db")
	l, err := Open(context.Background(), Config{Path: path, Genesis: v1})
	if err != nil {
		t.Fatal(err)
	}
	res := l.Apply([]Command{{Index: 1, Kind: KindMembership, Records: [][]byte{
		signMembership(t, v2, keys, "a", "b"), // 2 of 3 under a 3-of-3 quorum
		[]byte("garbage"),
		signMembership(t, v2, keys, "a", "b", "c"),
		signMembership(t, v2, keys, "a", "b", "c"), // replay: version 2 no longer follows 2
	}}})[0]
	if !errors.Is(res[0].Err, verify.ErrMembership) || res[1].Err == nil || res[2].Err != nil || res[2].Index != 2 || res[3].Err == nil {
		t.Fatalf("results: %v / %v / %+v / %v", res[0].Err, res[1].Err, res[2], res[3].Err)
	}
	m, _, err := l.Membership()
	if err != nil || m.Version != 2 || !m.Policy.Satisfied([]string{"a", "c"}) {
		t.Fatalf("membership after change: %+v %v", m, err)
	}
	l.Close()
	// Reopening with another genesis is refused; with the same one the change is still there.
	if _, err := Open(context.Background(), Config{Path: path, Genesis: v2}); !errors.Is(err, ErrGenesisMismatch) {
		t.Fatalf("other genesis: %v", err)
	}
	l, err = Open(context.Background(), Config{Path: path, Genesis: v1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if m, _, _ := l.Membership(); m.Version != 2 {
		t.Fatalf("after restart: version %d", m.Version)
	}
}
