package boltstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
)

// smallRuns makes chunks and merges small enough for a test's few hundred leaves to cross chunk
// boundaries and the merge limit.
func smallRuns(t *testing.T, chunk, merge int) {
	oldChunk, oldMerge := chunkRecords, maxRunMerge
	chunkRecords, maxRunMerge = chunk, merge
	t.Cleanup(func() { chunkRecords, maxRunMerge = oldChunk, oldMerge })
}

// Lookups by identity and by Merkle hash answer what a map of the indexed leaves answers, after
// every call to IndexLeavesTx, including Merkle hashes shared by several leaves whose records
// span chunks, and the number of runs stays logarithmic up to the merge limit.
func TestRunsMatchModel(t *testing.T) {
	smallRuns(t, 3, 64)
	ls, _ := newTestTree(t)
	ctx := context.Background()
	id := testTree.TreeId
	rng := rand.New(rand.NewPCG(1, 2))
	var leaves []*trillian.LogLeaf
	indexed := 0
	for step := range 80 {
		batch := makeLeaves(int64(len(leaves)), int64(1+rng.IntN(9)), 40)
		for _, l := range batch {
			if len(leaves) > 0 && rng.IntN(4) == 0 { // the value, so the Merkle hash, of an earlier leaf
				l.LeafValue = leaves[rng.IntN(len(leaves))].LeafValue
				l.MerkleLeafHash = rfc6962.DefaultHasher.HashLeaf(l.LeafValue)
			}
		}
		if err := ls.db.Update(func(tx *bbolt.Tx) error {
			_, err := AddSequencedLeavesUnindexedTx(tx, id, batch, epoch)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, batch...)
		to := len(leaves) - rng.IntN(len(batch)) // sometimes leave the newest unindexed
		if err := ls.db.Update(func(tx *bbolt.Tx) error { return IndexLeavesTx(tx, id, int64(indexed), int64(to)) }); err != nil {
			t.Fatalf("step %d: index [%d, %d): %v", step, indexed, to, err)
		}
		indexed = to

		hashes := make([][]byte, 0, len(leaves)+1)
		for _, l := range leaves {
			hashes = append(hashes, l.LeafIdentityHash)
		}
		absent := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(step)))
		hashes = append(hashes, absent[:], nil)
		var got []int64
		var runs []runHeader
		if err := ls.db.View(func(tx *bbolt.Tx) error {
			var err error
			if got, err = SequencedIndexesTx(tx, id, hashes); err != nil {
				return err
			}
			tb, err := openTree(tx, id)
			if err == nil {
				runs, err = runHeaders(tb.runs, runIdent)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for i, idx := range got {
			want := int64(-1)
			if i < indexed {
				want = int64(i)
			}
			if idx != want {
				t.Fatalf("step %d: identity of leaf %d (of %d, %d indexed) found at %d", step, i, len(hashes), indexed, idx)
			}
		}
		if limit := bits.Len(uint(indexed)) + indexed/maxRunMerge + 1; len(runs) > limit {
			t.Errorf("step %d: %d runs for %d leaves", step, len(runs), indexed)
		}

		tx, err := ls.SnapshotForTree(ctx, testTree)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			h := leaves[rng.IntN(len(leaves))].MerkleLeafHash
			var want []int64
			for i, l := range leaves[:indexed] {
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

// A merge that meets a second leaf with an indexed identity refuses it.
func TestMergeRefusesTwinIdentity(t *testing.T) {
	a := make(records, 0, 2*recordSize)
	h := sha256.Sum256([]byte("twin"))
	a = binary.BigEndian.AppendUint64(append(a, h[:]...), 1)
	b := binary.BigEndian.AppendUint64(append(records(nil), h[:]...), 7)
	if _, err := mergeRecords(runIdent, a, b); err == nil {
		t.Fatal("merged two leaves with one identity")
	}
	if m, err := mergeRecords(runHash, a, b); err != nil || m.len() != 2 {
		t.Fatalf("Merkle hash records: %d merged, %v", m.len(), err)
	}
}

// The Bloom filter never misses a hash it holds and answers about 1% of others.
func TestBloom(t *testing.T) {
	const n = 20000
	f := make([]byte, bloomSize(n))
	hash := func(i int) []byte {
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		return h[:]
	}
	for i := range n {
		bloomAdd(f, hash(i))
	}
	false_ := 0
	for i := range n {
		if !bloomHas(f, hash(i)) {
			t.Fatalf("hash %d added and not found", i)
		}
		if bloomHas(f, hash(n+i)) {
			false_++
		}
	}
	if rate := float64(false_) / n; rate > 0.02 {
		t.Errorf("false positive rate %.3f", rate)
	}
}
