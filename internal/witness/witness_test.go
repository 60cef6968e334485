package witness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// tree is a small in-memory Merkle tree for computing roots and proofs in tests.
type tree struct{ leaves [][]byte }

func newTree(n int, salt string) *tree {
	t := &tree{}
	for i := range n {
		t.leaves = append(t.leaves, rfc6962.DefaultHasher.HashLeaf([]byte(fmt.Sprintf("%s%d", salt, i))))
	}
	return t
}

func (t *tree) root(size uint64) []byte {
	f := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := f.NewEmptyRange(0)
	for _, h := range t.leaves[:size] {
		r.Append(h, nil)
	}
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	h, _ := r.GetRootHash(nil)
	return h
}

func (t *tree) consistency(old, size uint64) [][]byte {
	nodes, _ := proof.Consistency(old, size)
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		hashes[i] = t.nodeHash(id)
	}
	p, _ := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	return p
}

func (t *tree) nodeHash(id compact.NodeID) []byte {
	begin, end := id.Coverage()
	// A perfect subtree's hash is the root of a tree made of its leaves alone.
	sub := &tree{leaves: t.leaves[begin:end]}
	return sub.root(end - begin)
}

func body(size uint64, root []byte) string {
	return fmt.Sprintf("example.com/log\n%d\n%s\n", size, base64.StdEncoding.EncodeToString(root))
}

func TestDecide(t *testing.T) {
	a, b := newTree(20, "a"), newTree(20, "b")
	cp := func(tr *tree, size uint64) Checkpoint {
		return Checkpoint{Origin: "o", Size: size, Root: tr.root(size)}
	}
	last := &State{Size: 10, Root: a.root(10)}
	for _, tc := range []struct {
		name  string
		last  *State
		cp    Checkpoint
		proof [][]byte
		want  error
	}{
		{"first contact", nil, cp(a, 10), nil, nil},
		{"same checkpoint again", last, cp(a, 10), nil, nil},
		{"consistent growth", last, cp(a, 15), a.consistency(10, 15), nil},
		{"same size other root", last, cp(b, 10), nil, ErrInconsistent},
		{"fork", last, cp(b, 15), b.consistency(10, 15), ErrInconsistent},
		{"growth with a wrong proof", last, cp(a, 15), a.consistency(9, 15), ErrInconsistent},
		{"rollback", last, cp(a, 5), nil, ErrRollback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decide(tc.last, tc.cp, tc.proof)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCosignOwnRefusesInconsistentAcrossRestart(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "w1")
	cv, _ := fnote.VKeyToCosignatureV1(vkey)
	verifier, _ := fnote.NewVerifierForCosignatureV1(cv)
	logSkey, _, _ := note.GenerateKey(rand.Reader, "example.com/log")
	logSigner, _ := note.NewSigner(logSkey)
	path := filepath.Join(t.TempDir(), "witness.db")
	a, b := newTree(30, "a"), newTree(30, "b")
	sign := func(tr *tree, size uint64) []byte {
		s, _ := note.Sign(&note.Note{Text: body(size, tr.root(size))}, logSigner)
		return s
	}
	w, err := Open(path, skey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sig, err := w.CosignOwn(ctx, sign(a, 10), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The cosignature verifies as a C2SP cosignature/v1 over the checkpoint body.
	if _, err := note.Open([]byte(body(10, a.root(10))+"\n\u2014 "+sig.Name+" "+sig.Base64+"\n"), note.VerifierList(verifier)); err != nil {
		t.Fatalf("cosignature does not verify: %v", err)
	}
	if _, err := w.CosignOwn(ctx, sign(a, 20), func(old uint64) ([][]byte, error) { return a.consistency(old, 20), nil }); err != nil {
		t.Fatal(err)
	}
	w.Close()

	w, err = Open(path, skey)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, err = w.CosignOwn(ctx, sign(b, 25), func(old uint64) ([][]byte, error) { return b.consistency(old, 25), nil })
	if !errors.Is(err, ErrInconsistent) {
		t.Fatalf("forked checkpoint after restart: %v", err)
	}
	if _, err := w.CosignOwn(ctx, sign(a, 15), nil); !errors.Is(err, ErrRollback) {
		t.Fatalf("older checkpoint: %v", err)
	}
	if st, _ := w.Last("example.com/log"); st.Size != 20 {
		t.Fatalf("refusals changed the state: %+v", st)
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add(body(3, make([]byte, 32)))
	f.Fuzz(func(t *testing.T, s string) {
		cp, err := ParseCheckpoint(s)
		if err != nil {
			return
		}
		if got := body(cp.Size, cp.Root); cp.Origin == "example.com/log" && got != s && len(s) == len(got) {
			t.Fatalf("round trip: %q vs %q", got, s)
		}
	})
}
