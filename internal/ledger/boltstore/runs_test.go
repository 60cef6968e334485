package boltstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/witnessnet/witnessnet/internal/ledger/runs"

	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Lookups by identity and by Merkle hash answer what a map of the indexed leaves answers, after
// every call to IndexLeavesTx or IndexHashesTx (in turn, at random, for both indexes at once or
// one at a time), including Merkle hashes
// shared by several leaves, and the number of runs stays logarithmic (package runs tests chunk
// boundaries and the merge limit).
func TestRunsMatchModel(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	id := testTree.TreeId
	rng := rand.New(rand.NewPCG(1, 2))
	var leaves []*trillian.LogLeaf
	indexedID, indexedHash := 0, 0 // each index covers the leaves below
	for step := range 80 {
		batch := makeLeaves(int64(len(leaves)), int64(1+rng.IntN(9)), 40)
		for _, l := range batch {
			if len(leaves) > 0 && rng.IntN(4) == 0 { // the value, so the Merkle hash, of an earlier leaf
				l.LeafValue = leaves[rng.IntN(len(leaves))].LeafValue
				l.MerkleLeafHash = rfc6962.DefaultHasher.HashLeaf(l.LeafValue)
			}
		}
		if err := ls.db.Update(func(tx *bbolt.Tx) error {
			_, err := AddSequencedLeavesUnindexedTx(tx, id, batch, epoch, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, batch...)
		to := len(leaves) - rng.IntN(len(batch)) // sometimes leave the newest unindexed
		// Both kinds in one transaction, in two (either order), or one of them only, as a
		// crash between the two transactions leaves it; each kind resumes where it stopped.
		kinds := [][]IndexKinds{{IndexAll}, {IndexIdentities, IndexMerkleHashes}, {IndexMerkleHashes, IndexIdentities},
			{IndexIdentities}, {IndexMerkleHashes}}[rng.IntN(5)]
		lo := min(indexedID, indexedHash)
		for _, k := range kinds {
			index := func(tx *bbolt.Tx) error { return IndexLeavesTx(tx, id, int64(lo), int64(to), k) }
			if rng.IntN(2) == 0 {
				// From a little before what is indexed already, which counts as indexed.
				from := max(0, lo-rng.IntN(3))
				var idents, merkles [][]byte
				for _, l := range leaves[from:to] {
					idents, merkles = append(idents, l.LeafIdentityHash), append(merkles, l.MerkleLeafHash)
				}
				index = func(tx *bbolt.Tx) error { return IndexHashesTx(tx, id, int64(from), idents, merkles, k) }
			}
			if err := ls.db.Update(index); err != nil {
				t.Fatalf("step %d: index %b [%d, %d): %v", step, k, lo, to, err)
			}
			if k&IndexIdentities != 0 {
				indexedID = to
			}
			if k&IndexMerkleHashes != 0 {
				indexedHash = to
			}
		}

		hashes := make([][]byte, 0, len(leaves)+1)
		for _, l := range leaves {
			hashes = append(hashes, l.LeafIdentityHash)
		}
		absent := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(step)))
		hashes = append(hashes, absent[:], nil)
		var got []int64
		var open []runs.Run
		if err := ls.db.View(func(tx *bbolt.Tx) error {
			var err error
			if got, err = SequencedIndexesTx(tx, id, hashes); err != nil {
				return err
			}
			tb, err := openTree(tx, id)
			if err == nil {
				open, err = runs.Open(tb.runs, runIdent)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for i, idx := range got {
			want := int64(-1)
			if i < indexedID {
				want = int64(i)
			}
			if idx != want {
				t.Fatalf("step %d: identity of leaf %d (of %d, %d indexed) found at %d", step, i, len(hashes), indexedID, idx)
			}
		}
		if limit := bits.Len(uint(indexedID)) + 1; len(open) > limit {
			t.Errorf("step %d: %d runs for %d leaves", step, len(open), indexedID)
		}

		// A snapshot left open would hold db.Close, and the test, forever: close it on failure.
		tx, err := ls.SnapshotForTree(ctx, testTree)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Close() })
		for range 5 {
			h := leaves[rng.IntN(len(leaves))].MerkleLeafHash
			var want []int64
			for i, l := range leaves[:indexedHash] {
				if string(l.MerkleLeafHash) == string(h) {
					want = append(want, int64(i))
				}
			}
			found, err := tx.GetLeavesByHash(ctx, [][]byte{h}, true)
			if err != nil {
				t.Fatal(err)
			}
			var idx []int64
			for _, l := range found {
				idx = append(idx, l.LeafIndex)
			}
			if !slices.Equal(idx, want) {
				t.Fatalf("step %d: leaves with Merkle hash %x at %v, want %v", step, h[:4], idx, want)
			}
		}
		tx.Close()
	}
}

// Leaves indexed in the B+trees (AddSequencedLeaves) and leaves indexed in runs are found alike,
// once each, and an identity in either refuses a second leaf with it.
func TestRunsBesideBTreeIndexes(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	id := testTree.TreeId
	leaves := makeLeaves(0, 12, 40)
	if _, err := ls.AddSequencedLeaves(ctx, testTree, leaves[:5], epoch); err != nil {
		t.Fatal(err)
	}
	update := func(f func(tx *bbolt.Tx) error) error { return ls.db.Update(f) }
	if err := update(func(tx *bbolt.Tx) error {
		if _, err := AddSequencedLeavesUnindexedTx(tx, id, leaves[5:10], epoch, nil); err != nil {
			return err
		}
		return IndexLeavesTx(tx, id, 0, 10, IndexAll)
	}); err != nil {
		t.Fatalf("indexing leaves some of which the B+trees hold: %v", err)
	}
	var got []int64
	if err := ls.db.View(func(tx *bbolt.Tx) error {
		hashes := make([][]byte, 10)
		for i := range hashes {
			hashes[i] = leaves[i].LeafIdentityHash
		}
		var err error
		got, err = SequencedIndexesTx(tx, id, hashes)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i, idx := range got {
		if idx != int64(i) {
			t.Fatalf("identity of leaf %d found at %d", i, idx)
		}
	}
	tx, err := ls.SnapshotForTree(ctx, testTree)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 7} {
		found, err := tx.GetLeavesByHash(ctx, [][]byte{leaves[i].MerkleLeafHash}, true)
		if err != nil || len(found) != 1 || found[0].LeafIndex != int64(i) {
			t.Fatalf("leaf %d by hash: %d leaves, %v", i, len(found), err)
		}
	}
	tx.Close()

	// Leaf 10 with the identity of leaf 7 (in a run), leaf 11 with that of leaf 3 (in a B+tree).
	twin := proto.Clone(leaves[10]).(*trillian.LogLeaf)
	twin.LeafIdentityHash = leaves[7].LeafIdentityHash
	res, err := ls.AddSequencedLeaves(ctx, testTree, []*trillian.LogLeaf{twin}, epoch)
	if err != nil || status.FromProto(res[0].Status).Code() != codes.FailedPrecondition || res[0].Leaf.LeafIndex != 7 {
		t.Fatalf("a leaf with an identity indexed in a run: %v, %v", res, err)
	}
	twin = proto.Clone(leaves[10]).(*trillian.LogLeaf)
	twin.LeafIdentityHash = leaves[3].LeafIdentityHash
	if err := update(func(tx *bbolt.Tx) error {
		if _, err := AddSequencedLeavesUnindexedTx(tx, id, []*trillian.LogLeaf{twin}, epoch, nil); err != nil {
			return err
		}
		return IndexLeavesTx(tx, id, 10, 11, IndexAll)
	}); err == nil {
		t.Fatal("indexed a leaf whose identity the B+tree index holds at another leaf")
	}
}

// IndexHashesTx refuses hashes that cannot be the leaves', and writes nothing.
func TestIndexHashesRefused(t *testing.T) {
	ls, _ := newTestTree(t)
	id := testTree.TreeId
	leaves := makeLeaves(0, 3, 40)
	if err := ls.db.Update(func(tx *bbolt.Tx) error {
		_, err := AddSequencedLeavesUnindexedTx(tx, id, leaves, epoch, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	h := func(l *trillian.LogLeaf) []byte { return l.LeafIdentityHash }
	m := func(l *trillian.LogLeaf) []byte { return l.MerkleLeafHash }
	for name, c := range map[string]struct{ idents, merkles [][]byte }{
		"lengths differ": {[][]byte{h(leaves[0]), h(leaves[1])}, [][]byte{m(leaves[0])}},
		"short hash":     {[][]byte{h(leaves[0]), h(leaves[1])[:31]}, [][]byte{m(leaves[0]), m(leaves[1])}},
	} {
		err := ls.db.Update(func(tx *bbolt.Tx) error { return IndexHashesTx(tx, id, 0, c.idents, c.merkles, IndexAll) })
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: err = %v, want InvalidArgument", name, err)
		}
	}
	ls.db.View(func(tx *bbolt.Tx) error {
		got, err := SequencedIndexesTx(tx, id, [][]byte{h(leaves[0])})
		if err != nil || got[0] != -1 {
			t.Errorf("after refused calls: leaf 0 found at %v (%v), want not indexed", got, err)
		}
		return nil
	})
}
