package verify

import (
	"errors"
	"testing"
)

func TestEvidence(t *testing.T) {
	tn := newNetwork(t, 4, 3)
	p, err := ParsePolicy(tn.policy)
	if err != nil {
		t.Fatal(err)
	}
	const rootA, rootB = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA="
	a := tn.checkpoint(t, "example.org/log\n5\n"+rootA+"\n", "w1", "w2", "w3")
	b := tn.checkpoint(t, "example.org/log\n5\n"+rootB+"\n", "w2", "w3", "w4")
	e, err := NewEvidence(p, a, b, nil, "node1", "node2")
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != "fork" || len(e.SignedBoth) != 3 || e.SignedBoth[1] != "w2" || e.SignedBoth[2] != "w3" {
		t.Fatalf("evidence %+v", e)
	}
	for name, tc := range map[string]struct{ a, b []byte }{
		"same checkpoint":  {a, a},
		"quorum not met":   {a, tn.checkpoint(t, "example.org/log\n5\n"+rootB+"\n", "w4")},
		"other log":        {a, tn.checkpoint(t, "example.org/other\n5\n"+rootB+"\n", "w1", "w2", "w3")},
		"empty older tree": {tn.checkpoint(t, "example.org/log\n0\n"+rootA+"\n", "w1", "w2", "w3"), a},
	} {
		if _, err := NewEvidence(p, tc.a, tc.b, nil); !errors.Is(err, ErrNotEvidence) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Different sizes without a valid consistency proof: the log could not prove it only grew.
	c := tn.checkpoint(t, "example.org/log\n7\n"+rootB+"\n", "w1", "w2", "w3")
	e, err = NewEvidence(p, a, c, [][]byte{make([]byte, 32)})
	if err != nil || e.Kind != "inconsistent" {
		t.Fatalf("inconsistent: %+v %v", e, err)
	}
}
