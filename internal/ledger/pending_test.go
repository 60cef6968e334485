package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// testMerge stands in for the envelope format: an "envelope" is payload|sig,sig,... and merging
// is the sorted union of signatures over an equal payload.
func testMerge(a, b []byte) ([]byte, error) {
	pa, sa, _ := bytes.Cut(a, []byte("|"))
	pb, sb, _ := bytes.Cut(b, []byte("|"))
	if !bytes.Equal(pa, pb) {
		return nil, errors.New("different payloads")
	}
	sigs := append(bytes.Split(sa, []byte(",")), bytes.Split(sb, []byte(","))...)
	slices.SortFunc(sigs, bytes.Compare)
	sigs = slices.CompactFunc(sigs, bytes.Equal)
	return append(append(bytes.Clone(pa), '|'), bytes.Join(sigs, []byte(","))...), nil
}

var stamp0 = time.Unix(1700000000, 0)

func contribution(payload, signer string, expires time.Time) []byte {
	c := Contribution{Layout: "sha256:aa", Step: "rebuild", Payload: "sha256:" + payload, Threshold: 2,
		Envelope: []byte(payload + "|sig-" + signer), Signers: []string{signer},
		Terms: []string{Term(TermStep, "sha256:aa/rebuild")}, Expires: expires.UnixNano()}
	b, _ := c.MarshalBinary()
	return b
}

func cosign(raftIndex uint64, at time.Time, recs ...[]byte) Command {
	return Command{Index: raftIndex, Kind: KindCosign, Stamp: at, Records: recs}
}

func openCosign(t *testing.T) (*Ledger, string) { return openMerging(t, testMerge) }

// openMerging opens a started ledger in a new directory that merges co-signers' envelopes with
// merge.
func openMerging(t *testing.T, merge Merger) (*Ledger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	l, err := Open(context.Background(), Config{Path: path, Merge: merge})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(func() { l.Close() })
	return l, path
}

func TestCosignReachesThreshold(t *testing.T) {
	l, path := openCosign(t)
	exp := stamp0.Add(time.Hour)
	r := l.Apply([]Command{cosign(1, stamp0, contribution("p1", "alice", exp), contribution("p1", "alice", exp))})
	group := r[0][0].Cosign.Group
	for _, res := range r[0] {
		if res.Err != nil || res.Cosign == nil || res.Cosign.Appended || res.Cosign.Signatures != 1 {
			t.Fatalf("one signer twice: %+v", res)
		}
	}
	// A different payload for the same step is its own group: disagreement, not a signature.
	r = l.Apply([]Command{cosign(2, stamp0, contribution("p2", "carol", exp))})
	if r[0][0].Cosign.Signatures != 1 || r[0][0].Cosign.Group == group {
		t.Fatalf("other payload: %+v", r[0][0])
	}
	if got, _ := l.Pending("sha256:aa", stamp0); len(got) != 2 {
		t.Fatalf("want 2 open groups, got %d", len(got))
	}
	if l.Size() != 0 {
		t.Fatal("a pending link was appended")
	}
	r = l.Apply([]Command{cosign(3, stamp0, contribution("p1", "bob", exp))})
	res := r[0][0]
	if res.Err != nil || !res.Cosign.Appended || res.Index != 0 || res.Cosign.Signatures != 2 {
		t.Fatalf("second signer: %+v %+v", res, res.Cosign)
	}
	waitSize(t, l, 1)
	e, err := l.Entry(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := ParseLeaf(e.Leaf)
	if string(leaf.Envelope) != "p1|sig-alice,sig-bob" || leaf.Layout != "sha256:aa" {
		t.Fatalf("appended envelope %q", leaf.Envelope)
	}
	if idx, _ := l.Search(Term(TermStep, "sha256:aa/rebuild"), 0, 10); !slices.Equal(idx, []uint64{0}) {
		t.Fatalf("search: %v", idx)
	}
	// A late signer learns where the entry is; the log does not change.
	r = l.Apply([]Command{cosign(4, stamp0, contribution("p1", "dave", exp))})
	if res := r[0][0]; !res.Duplicate || res.Index != 0 || l.Size() != 1 {
		t.Fatalf("late signer: %+v", res)
	}
	open, _ := l.Pending("", stamp0)
	if len(open) != 1 || open[0].Payload != "sha256:p2" {
		t.Fatalf("open groups after completion: %+v", open)
	}
	// The state survives a restart.
	l.Close()
	l2, err := Open(context.Background(), Config{Path: path, Merge: testMerge})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if open, _ := l2.Pending("", stamp0); len(open) != 1 {
		t.Fatalf("after restart: %d groups", len(open))
	}
}

// TestCompletedGroupLeafAsEveryVersionWritesIt: the leaf of a completed threshold link is made
// by every replica on its own, so it must not depend on the replica's version: a JSON envelope
// goes in the base64 form, as earlier versions wrote it, not in the embedded form that admission
// uses (admission's leaf is made once and replicated as bytes).
func TestCompletedGroupLeafAsEveryVersionWritesIt(t *testing.T) {
	merged := []byte(`{"payloadType":"t","payload":"e30=","signatures":[{"sig":"YQ=="},{"sig":"Yg=="}]}`)
	l, _ := openMerging(t, func(a, b []byte) ([]byte, error) { return merged, nil })
	exp := stamp0.Add(time.Hour)
	l.Apply([]Command{cosign(1, stamp0, contribution("p1", "alice", exp))})
	if res := l.Apply([]Command{cosign(2, stamp0, contribution("p1", "bob", exp))})[0][0]; res.Err != nil || res.Cosign == nil || !res.Cosign.Appended {
		t.Fatalf("second signer: %+v", res)
	}
	waitSize(t, l, 1)
	e, err := l.Entry(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(Leaf{Envelope: merged, Layout: "sha256:aa"})
	if !bytes.Equal(e.Leaf, want) {
		t.Fatalf("leaf %s\nwant %s", e.Leaf, want)
	}
}

func TestCosignExpiresAndRejects(t *testing.T) {
	l, _ := openCosign(t)
	exp := stamp0.Add(time.Minute)
	l.Apply([]Command{cosign(1, stamp0, contribution("p1", "alice", exp))})
	// A later command stamped past the expiry drops the group: the next signature starts over.
	r := l.Apply([]Command{cosign(2, exp, contribution("p1", "bob", exp.Add(time.Minute)))})
	if res := r[0][0]; res.Cosign.Appended || res.Cosign.Signatures != 1 {
		t.Fatalf("expired group was completed: %+v", res.Cosign)
	}
	bad := Contribution{Layout: "sha256:aa", Step: "rebuild", Payload: "sha256:p1", Threshold: 3,
		Envelope: []byte("p1|sig-carol"), Signers: []string{"carol"}, Expires: exp.Add(time.Hour).UnixNano()}
	b, _ := bad.MarshalBinary()
	r = l.Apply([]Command{cosign(3, exp, b, []byte("{"), []byte(`{"layout":"x"}`))})
	if !errors.Is(r[0][0].Err, ErrPendingMismatch) || !errors.Is(r[0][1].Err, ErrMalformedRecord) || !errors.Is(r[0][2].Err, ErrMalformedRecord) {
		t.Fatalf("rejections: %v / %v / %v", r[0][0].Err, r[0][1].Err, r[0][2].Err)
	}
	if l.Size() != 0 {
		t.Fatal("a rejected contribution changed the log")
	}
}

func FuzzContribution(f *testing.F) {
	f.Add(contribution("p", "s", stamp0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Contribution
		if err := c.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again Contribution
		if err := again.UnmarshalBinary(out); err != nil || again.GroupID() != c.GroupID() {
			t.Fatalf("re-decoding changed the contribution: %v", err)
		}
	})
}
