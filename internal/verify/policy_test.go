package verify

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

type testNetwork struct {
	logSigner note.Signer
	witnesses map[string]note.Signer
	policy    []byte
}

// newNetwork makes a log key and n witnesses, with a policy requiring k of them.
func newNetwork(t testing.TB, n, k int) *testNetwork {
	tn := &testNetwork{witnesses: map[string]note.Signer{}}
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.org/log")
	tn.logSigner, _ = note.NewSigner(skey)
	var b strings.Builder
	fmt.Fprintf(&b, "# test network\nlog %s https://log.example.org\n", vkey)
	var names []string
	for i := range n {
		name := fmt.Sprintf("w%d", i+1)
		ws, wv, _ := note.GenerateKey(rand.Reader, name)
		cv, _ := fnote.VKeyToCosignatureV1(wv)
		signer, err := fnote.NewSignerForCosignatureV1(ws)
		if err != nil {
			t.Fatal(err)
		}
		tn.witnesses[name] = signer
		fmt.Fprintf(&b, "witness %s %s\n", name, cv)
		names = append(names, name)
	}
	fmt.Fprintf(&b, "group members %d %s\nquorum members\n", k, strings.Join(names, " "))
	tn.policy = []byte(b.String())
	return tn
}

func (tn *testNetwork) checkpoint(t testing.TB, body string, cosigners ...string) []byte {
	signers := []note.Signer{tn.logSigner}
	for _, c := range cosigners {
		signers = append(signers, tn.witnesses[c])
	}
	b, err := note.Sign(&note.Note{Text: body}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testBody = "example.org/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"

func TestPolicyVerifyCheckpoint(t *testing.T) {
	tn := newNetwork(t, 4, 3)
	p, err := ParsePolicy(tn.policy)
	if err != nil {
		t.Fatal(err)
	}
	cp, rep, err := p.VerifyCheckpoint(tn.checkpoint(t, testBody, "w1", "w2", "w4"))
	if err != nil || cp.Size != 5 || len(rep.Cosigners) != 3 {
		t.Fatalf("quorum checkpoint: %v %+v", err, rep)
	}
	if _, _, err := p.VerifyCheckpoint(tn.checkpoint(t, testBody, "w1", "w2")); !errors.Is(err, ErrQuorumNotMet) {
		t.Fatalf("two of four: %v", err)
	}
	// The same witness twice counts once.
	twice := tn.checkpoint(t, testBody, "w1", "w2")
	line := twice[bytes.LastIndex(twice[:len(twice)-1], []byte("\n"))+1:]
	if _, _, err := p.VerifyCheckpoint(append(twice, line...)); err == nil {
		t.Fatal("a duplicated cosignature line counted twice")
	}
	other := newNetwork(t, 1, 1)
	if _, _, err := p.VerifyCheckpoint(other.checkpoint(t, testBody, "w1")); !errors.Is(err, ErrNoLogSignature) {
		t.Fatalf("foreign log: %v", err)
	}
	// A cosignature over another body does not verify.
	forged := tn.checkpoint(t, testBody, "w1", "w2", "w3")
	forged = bytes.Replace(forged, []byte("\n5\n"), []byte("\n6\n"), 1)
	if _, _, err := p.VerifyCheckpoint(forged); err == nil {
		t.Fatal("altered checkpoint accepted")
	}
}

func TestParsePolicyRejects(t *testing.T) {
	tn := newNetwork(t, 2, 2)
	good := string(tn.policy)
	for name, in := range map[string]string{
		"unknown keyword":  good + "frobnicate x\n",
		"no quorum":        strings.Replace(good, "quorum members\n", "", 1),
		"two quorums":      good + "quorum w1\n",
		"undefined member": good + "group g 1 w9\n",
		"k too large":      good + "group g 3 w1 w2\n",
		"k zero":           good + "group g 0 w1 w2\n",
		"duplicate name":   good + "group w1 1 w2\n",
		"member twice":     good + "group g 1 w1 w1\n",
		"bad log key":      "log nope\nquorum none\n",
		"no log":           "quorum none\n",
		"undefined quorum": strings.Replace(good, "quorum members", "quorum nobody", 1),
	} {
		if _, err := ParsePolicy([]byte(in)); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPolicyNestedGroups(t *testing.T) {
	tn := newNetwork(t, 4, 1)
	p, err := ParsePolicy(append(tn.policy, []byte("group a 2 w1 w2\ngroup b any w3 w4\ngroup both all a b\n")...))
	if err != nil {
		t.Fatal(err)
	}
	p.Quorum = "both"
	for _, tc := range []struct {
		have []string
		want bool
	}{{[]string{"w1", "w2", "w3"}, true}, {[]string{"w1", "w3", "w4"}, false}, {[]string{"w1", "w2"}, false}} {
		if got := p.Satisfied(tc.have); got != tc.want {
			t.Errorf("%v: got %v", tc.have, got)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	tn := newNetwork(f, 3, 2)
	f.Add(tn.policy)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			return
		}
		out := p.Marshal()
		p2, err := ParsePolicy(out)
		if err != nil {
			t.Fatalf("marshalled policy does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(p2.Marshal(), out) {
			t.Fatal("marshal is not stable")
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add(testBody)
	f.Fuzz(func(t *testing.T, s string) {
		cp, err := ParseCheckpoint(s)
		if err != nil {
			return
		}
		if cp.Text != s {
			t.Fatal("text not kept")
		}
	})
}
