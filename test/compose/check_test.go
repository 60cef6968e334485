package compose

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func leafOf(env string) []byte {
	b, _ := json.Marshal(map[string]any{"envelope": []byte(env)})
	return b
}

func logOf(node string, envs ...string) NodeLog {
	l := NodeLog{Node: node}
	for _, e := range envs {
		l.Leaves = append(l.Leaves, leafOf(e))
	}
	return l
}

func id(env string) string { return EnvelopeIdentity([]byte(env)) }

func TestCheckLogs(t *testing.T) {
	acked := []Op{appendOp(0, id("a"), 0, 0, 1), appendOp(0, id("b"), 1, 2, 3)}
	tests := []struct {
		name string
		ops  []Op
		logs []NodeLog
		want string // substring of the first error, "" for none
	}{
		{"converged", acked, []NodeLog{logOf("n1", "a", "b"), logOf("n2", "a", "b")}, ""},
		{"lost", acked, []NodeLog{logOf("n1", "a"), logOf("n2", "a")}, "lost"},
		{"moved", acked, []NodeLog{logOf("n1", "b", "a"), logOf("n2", "b", "a")}, "moved"},
		{"duplicate", acked, []NodeLog{logOf("n1", "a", "b", "a"), logOf("n2", "a", "b", "a")}, "duplicate"},
		{"not converged", acked, []NodeLog{logOf("n1", "a", "b"), logOf("n2", "a", "b", "c")}, "not converged"},
		{"fork", acked, []NodeLog{logOf("n1", "a", "b"), logOf("n2", "a", "c")}, "fork"},
		{"refused but appended", append(acked, Op{Kind: Append, Outcome: Failed, Entry: id("c")}),
			[]NodeLog{logOf("n1", "a", "b", "c")}, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := CheckLogs(tt.ops, tt.logs)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Fatalf("unexpected: %v", errs)
			case tt.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tt.want)):
				t.Fatalf("got %v, want an error about %q", errs, tt.want)
			}
		})
	}
}

func TestRootsMatchProofs(t *testing.T) {
	var leaves [][]byte
	for i := range 300 {
		leaves = append(leaves, leafOf(fmt.Sprint(i)))
	}
	roots, err := Roots(leaves, []uint64{0, 1, 7, 255, 256, 257, 300})
	if err != nil {
		t.Fatal(err)
	}
	if string(roots[0]) != string(rfc6962.DefaultHasher.EmptyRoot()) {
		t.Fatal("empty root")
	}
	// An inclusion proof of the last leaf of a size, built independently, must land on the root.
	for _, size := range []uint64{1, 7, 255, 256, 257, 300} {
		hashes := make([][]byte, size)
		for i := range size {
			hashes[i] = rfc6962.DefaultHasher.HashLeaf(leaves[i])
		}
		nodes, err := proof.Inclusion(size-1, size)
		if err != nil {
			t.Fatal(err)
		}
		p, err := nodes.Rehash(subtreeHashes(hashes, nodes.IDs), rfc6962.DefaultHasher.HashChildren)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, size-1, size, hashes[size-1], p, roots[size]); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	if _, err := Roots(leaves, []uint64{301}); err == nil {
		t.Fatal("a size beyond the log was accepted")
	}
}

func TestCheckCheckpointsAndConsistency(t *testing.T) {
	var leaves [][]byte
	for i := range 40 {
		leaves = append(leaves, leafOf(fmt.Sprint(i)))
	}
	roots, _ := Roots(leaves, []uint64{3, 10, 40})
	good := []Checkpoint{{Node: "n1", Size: 3, Root: roots[3]}, {Node: "n2", Size: 10, Root: roots[10]}, {Node: "n1", Size: 40, Root: roots[40]}}
	if errs := CheckCheckpoints(good, leaves); len(errs) > 0 {
		t.Fatal(errs)
	}
	prover := func(old, size uint64) ([][]byte, error) { return consistencyProof(leaves, old, size) }
	pairs, errs := CheckConsistency(good, prover)
	if len(errs) > 0 || pairs != 2 {
		t.Fatalf("pairs %d, errs %v", pairs, errs)
	}
	forked := append(good, Checkpoint{Node: "n3", Size: 10, Root: roots[3]})
	if errs := CheckCheckpoints(forked, leaves); len(errs) != 1 || !strings.Contains(errs[0].Error(), "n3") {
		t.Fatalf("fork not reported: %v", errs)
	}
	if _, errs := CheckConsistency(forked, prover); len(errs) == 0 {
		t.Fatal("two roots at one size not reported")
	}
	bad := func(old, size uint64) ([][]byte, error) {
		p, err := consistencyProof(leaves, old, size)
		if len(p) > 0 {
			p[0] = rfc6962.DefaultHasher.EmptyRoot()
		}
		return p, err
	}
	if _, errs := CheckConsistency(good, bad); len(errs) != 2 {
		t.Fatalf("bad proofs: %v", errs)
	}
}

// consistencyProof builds a proof from the leaves, independently of the code under test.
func consistencyProof(leaves [][]byte, old, size uint64) ([][]byte, error) {
	hashes := make([][]byte, size)
	for i := range size {
		hashes[i] = rfc6962.DefaultHasher.HashLeaf(leaves[i])
	}
	nodes, err := proof.Consistency(old, size)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(subtreeHashes(hashes, nodes.IDs), rfc6962.DefaultHasher.HashChildren)
}

// subtreeHashes computes the hash of each requested perfect subtree by plain recursion.
func subtreeHashes(leafHashes [][]byte, ids []compact.NodeID) [][]byte {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = subtree(leafHashes, id.Index<<id.Level, 1<<id.Level)
	}
	return out
}

func subtree(h [][]byte, start, n uint64) []byte {
	if n == 1 {
		return h[start]
	}
	return rfc6962.DefaultHasher.HashChildren(subtree(h, start, n/2), subtree(h, start+n/2, n/2))
}

func TestMonotonicReads(t *testing.T) {
	ops := []Op{
		{Kind: Read, Outcome: Ok, Found: true, Node: "n1", Index: 3, Call: 0, Return: 10},
		{Kind: Read, Outcome: Ok, Found: false, Node: "n2", Index: 3, Call: 20, Return: 30},
		{Kind: Read, Outcome: Ok, Found: false, Node: "n1", Index: 3, Call: 5, Return: 30},
	}
	if errs := MonotonicReads(ops, nil); len(errs) != 0 {
		t.Fatalf("other nodes and overlapping reads are fine: %v", errs)
	}
	ops = append(ops, Op{Kind: Read, Outcome: Ok, Found: false, Node: "n1", Index: 3, Call: 20, Return: 30})
	if errs := MonotonicReads(ops, nil); len(errs) != 1 {
		t.Fatalf("forgetting not reported: %v", errs)
	}
	if errs := MonotonicReads(ops, map[string]bool{"n1": true}); len(errs) != 0 {
		t.Fatalf("exempt node reported: %v", errs)
	}
}

func TestParseCheckpoint(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.org/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	root := make([]byte, 32)
	body := "example.org/log\n12\n" + base64.StdEncoding.EncodeToString(root) + "\n"
	signed, err := note.Sign(&note.Note{Text: body}, signer)
	if err != nil {
		t.Fatal(err)
	}
	wkey, _, _ := note.GenerateKey(rand.Reader, "node2")
	wsigner, _ := note.NewSigner(wkey)
	cosigned, _ := note.Sign(&note.Note{Text: body}, signer, wsigner)
	pol, err := ParsePolicy([]byte("# policy\nlog " + vkey + "\nwitness node2 node2+abcd+AAAA http://node2:8080\nquorum all\n"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ParseCheckpoint(cosigned, pol)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 12 || cp.Origin != "example.org/log" || cp.Cosigs != 1 || pol.Witnesses["node2"] != "http://node2:8080" {
		t.Fatalf("parsed %+v", cp)
	}
	if _, err := ParseCheckpoint(signed[:len(signed)-10], pol); err == nil {
		t.Fatal("a damaged signature was accepted")
	}
	other, _, _ := note.GenerateKey(rand.Reader, "example.org/log")
	os, _ := note.NewSigner(other)
	forged, _ := note.Sign(&note.Note{Text: body}, os)
	if _, err := ParseCheckpoint(forged, pol); err == nil {
		t.Fatal("a checkpoint signed by an unknown key was accepted")
	}
}

func TestTilePathAndBundle(t *testing.T) {
	for n, want := range map[uint64]string{0: "000", 7: "007", 999: "999", 1000: "x001/000", 1234067: "x001/x234/067"} {
		if got := TilePath(n); got != want {
			t.Errorf("TilePath(%d) = %q, want %q", n, got, want)
		}
	}
	es, err := ParseBundle([]byte{0, 2, 'h', 'i', 0, 0, 0, 1, 'x'})
	if err != nil || len(es) != 3 || string(es[0]) != "hi" || len(es[1]) != 0 || string(es[2]) != "x" {
		t.Fatalf("got %q, %v", es, err)
	}
	for _, bad := range [][]byte{{0}, {0, 3, 'a'}} {
		if _, err := ParseBundle(bad); err == nil {
			t.Errorf("ParseBundle(%v) accepted", bad)
		}
	}
}

func FuzzParseBundle(f *testing.F) {
	f.Add([]byte{0, 2, 'h', 'i'})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseBundle(b)
		if err != nil {
			return
		}
		var again []byte
		for _, e := range es {
			again = append(again, byte(len(e)>>8), byte(len(e)))
			again = append(again, e...)
		}
		if string(again) != string(b) {
			t.Fatalf("round trip %x -> %x", b, again)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.org/log")
	signer, _ := note.NewSigner(skey)
	signed, _ := note.Sign(&note.Note{Text: "example.org/log\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"}, signer)
	pol := &Policy{LogKeys: []string{vkey}, Witnesses: map[string]string{}}
	f.Add(signed)
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := ParseCheckpoint(b, pol)
		if err == nil && len(cp.Root) != 32 {
			t.Fatalf("accepted a root of %d bytes", len(cp.Root))
		}
	})
}

func TestExplainFork(t *testing.T) {
	leaves := make([][]byte, 12)
	for i := range leaves {
		leaves[i] = fmt.Appendf(nil, `{"n":%d}`, i)
	}
	// n2 applied a duplicate of entry 3 at index 6: everything after moves by one.
	forked := append(append(append([][]byte{}, leaves[:6]...), leaves[3]), leaves[6:11]...)
	logs := []NodeLog{{Node: "n1", Leaves: leaves}, {Node: "n2", Leaves: forked}, {Node: "n3", Leaves: leaves}}
	hashes := func(ls [][]byte) [][]byte {
		var out [][]byte
		for _, l := range ls {
			out = append(out, rfc6962.DefaultHasher.HashLeaf(l))
		}
		return out
	}
	badTile := hashes(leaves)
	badTile[9] = rfc6962.DefaultHasher.EmptyRoot()
	r1, _ := Roots(leaves, []uint64{10})
	r2, _ := Roots(forked, []uint64{10})
	got := strings.Join(ExplainFork(logs, map[string][][]byte{"n1": hashes(leaves), "n2": hashes(forked), "n3": badTile}, []Disputed{
		{Size: 10, Root: r2[10], Signers: []string{"n2"}, Found: "n1"},
		{Size: 10, Root: r1[10], Signers: []string{"n1", "n3"}, Found: "n2"},
		{Size: 10, Root: rfc6962.DefaultHasher.EmptyRoot(), Signers: []string{"n3"}, Found: "n1"},
		{Size: 40, Root: r1[10], Signers: []string{"n1"}, Found: "n2"},
	}), "\n")
	for _, want := range []string{
		"n1 and n2 hold different entries from index 6 on (6 of the first 12 differ); n1's entry 6 is n2's entry 7; n2's entry 6 is n1's entry 3",
		"n1 and n3 hold the same 12 entries",
		"n1's level-0 hashes match its 12 entries",
		"n3's level-0 hash tile disagrees with its own entry 9",
		"root at 10 cosigned by [n2] (evidence on n1) is the root of the entries of [n2]",
		"root at 10 cosigned by [n1 n3] (evidence on n2) is the root of the entries of [n1 n3]",
		"root at 10 cosigned by [n3] (evidence on n1) is the root of no node's entries: a Merkle storage fault",
		"root at 40 cosigned by [n1] (evidence on n2): beyond the entries fetched",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestLeafHashesAndEvidence(t *testing.T) {
	hashes := make([]byte, 300*32)
	for i := range hashes {
		hashes[i] = byte(i / 32)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tile/0/000", func(w http.ResponseWriter, r *http.Request) { w.Write(hashes[:256*32]) })
	mux.HandleFunc("GET /tile/0/001.p/44", func(w http.ResponseWriter, r *http.Request) { w.Write(hashes[256*32:]) })
	mux.HandleFunc("GET /tile/0/001.p/45", func(w http.ResponseWriter, r *http.Request) { w.Write(hashes[256*32:]) })
	mux.HandleFunc("GET /v1/evidence", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"evidence":[{"kind":"disagrees","found":"2026-12-05T00:00:00Z","size":722,"signers":["node3"],"theirs":"t","ours":"o"}]}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a := &API{Name: "n1", URL: srv.URL, HTTP: srv.Client()}
	got, err := a.LeafHashes(context.Background(), 300)
	if err != nil || len(got) != 300 || got[299][0] != byte(299%256) || got[256][31] != 0 {
		t.Fatalf("LeafHashes: %d hashes, %v", len(got), err)
	}
	if _, err := a.LeafHashes(context.Background(), 301); err == nil {
		t.Fatal("a tile one hash short was accepted")
	}
	ev, err := a.Evidence(context.Background())
	if err != nil || len(ev) != 1 || ev[0].Size != 722 || ev[0].Signers[0] != "node3" || ev[0].Theirs != "t" || ev[0].Ours != "o" {
		t.Fatalf("Evidence: %+v, %v", ev, err)
	}
}
