package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/witnessnet/witnessnet/internal/ledger/boltstore"
	"go.etcd.io/bbolt"
)

func identityOf(t *testing.T, i int) Identity {
	var r Record
	if err := r.UnmarshalBinary(record(t, i)); err != nil {
		t.Fatal(err)
	}
	return r.Identity
}

func indexedCount(t *testing.T, l *Ledger) uint64 {
	var n uint64
	l.view(func(tx *bbolt.Tx) error {
		n = getU64(tx.Bucket(bucketMeta).Get(keyIndexed))
		return nil
	})
	return n
}

// waitIndexed waits until the sequencer has indexed n entries and forgotten their identities.
// It forgets them just after its transaction commits, so the count of indexed entries is
// visible first.
func waitIndexed(t *testing.T, l *Ledger, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); indexedCount(t, l) < n || l.st.unindexed.held() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("indexed %d of %d, %d identities still held", indexedCount(t, l), n, l.st.unindexed.held())
		}
	}
}

// Entries are found by identity, and deduplicated, whether the sequencer has indexed them yet
// or not, across a restart that finds some not indexed, and after indexing catches up.
func TestEntriesFoundBeforeAndAfterIndexing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	l, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: nothing indexes behind Apply.
	l.Apply([]Command{entries(t, 1, 0, 100)})
	if n := indexedCount(t, l); n != 0 {
		t.Fatalf("%d entries indexed without a sequencer", n)
	}
	check := func(l *Ledger, upTo int) {
		t.Helper()
		for _, i := range []int{0, 57, upTo - 1} {
			if idx, err := l.Lookup(identityOf(t, i)); err != nil || idx != uint64(i) {
				t.Fatalf("lookup %d: %d %v", i, idx, err)
			}
		}
		if _, err := l.Lookup(identityOf(t, upTo)); err == nil {
			t.Fatalf("entry %d found before it was appended", upTo)
		}
	}
	check(l, 100)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened with 100 entries not indexed: they are read back from the leaves.
	l, err = Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	check(l, 100)
	r := l.Apply([]Command{entries(t, 2, 50, 100)})
	if !r[0][0].Duplicate || r[0][0].Index != 50 || r[0][50].Duplicate || r[0][50].Index != 100 {
		t.Fatalf("dedup against unindexed entries: %+v %+v", r[0][0], r[0][50])
	}
	l.Start()
	waitSize(t, l, 150)
	waitIndexed(t, l, 150)
	check(l, 150)
	// Trillian finds the indexed leaves by Merkle leaf hash too.
	for _, i := range []int{0, 57, 99, 100, 149} {
		foundByMerkleHash(t, l, i, 150)
	}
	r = l.Apply([]Command{entries(t, 3, 149, 2)})
	if !r[0][0].Duplicate || r[0][0].Index != 149 || r[0][1].Index != 150 {
		t.Fatalf("dedup against indexed entries: %+v", r[0])
	}
	for deadline := time.Now().Add(10 * time.Second); indexedCount(t, l) < 151; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("indexed %d of 151", indexedCount(t, l))
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A state.db from before indexing was deferred has no count of indexed entries: all its
	// entries are indexed.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyIndexed) })
	db.Close()
	l = openTest(t, path, nil)
	if n := indexedCount(t, l); n != 151 || l.st.unindexed.held() != 0 {
		t.Fatalf("old state.db: indexed %d, %d held", n, l.st.unindexed.held())
	}
	check(l, 151)
}

// The index step writes the identities, the Merkle hashes and the search terms in transactions
// of their own. A crash after the first leaves the identities indexed and the rest not: after the
// restart the step completes the others without indexing an identity twice, and everything is
// found.
func TestIndexStepResumesAfterIdentitiesOnly(t *testing.T) {
	l := reopenAfterIndexing(t, entries(t, 1, 0, 150), boltstore.IndexIdentities)
	for _, i := range []int{0, 57, 149} {
		if idx, err := l.Lookup(identityOf(t, i)); err != nil || idx != uint64(i) {
			t.Fatalf("lookup %d: %d %v", i, idx, err)
		}
		foundByMerkleHash(t, l, i, 150)
	}
	if r := l.Apply([]Command{entries(t, 2, 149, 2)}); !r[0][0].Duplicate || r[0][0].Index != 149 || r[0][1].Index != 150 {
		t.Fatalf("dedup after the restart: %+v", r[0])
	}
}

// A crash after the step's first two transactions (identities, Merkle hashes) and before its
// third (the search terms and the mark of what is indexed) leaves the terms pending: after the
// restart the step indexes them once, and a search finds each entry once.
func TestIndexStepResumesBeforeTerms(t *testing.T) {
	cmd := Command{Index: 1, Kind: KindEntries, Stamp: time.Unix(1700000000, 0)}
	for i := range 150 {
		env := fmt.Appendf(nil, `{"payloadType":"t","payload":"%d","signatures":[]}`, i)
		leaf, blob, err := NewLeaf(env, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := (&Record{Identity: IdentityOf(env), Leaf: leaf, Blob: blob, Terms: []string{Term("sha256", fmt.Sprint(i))}}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Records = append(cmd.Records, r)
	}
	l := reopenAfterIndexing(t, cmd, boltstore.IndexIdentities, boltstore.IndexMerkleHashes)
	for _, i := range []int{0, 57, 149} {
		if got, err := l.Search(Term("sha256", fmt.Sprint(i)), 0, 10); err != nil || !slices.Equal(got, []uint64{uint64(i)}) {
			t.Fatalf("search for entry %d: %v %v", i, got, err)
		}
		if idx, err := l.Lookup(identityOf(t, i)); err != nil || idx != uint64(i) {
			t.Fatalf("lookup %d: %d %v", i, idx, err)
		}
		foundByMerkleHash(t, l, i, 150)
	}
	err := l.st.db.View(func(tx *bbolt.Tx) error {
		if k, _ := tx.Bucket(bucketTermsPending).Cursor().First(); k != nil {
			return fmt.Errorf("terms still pending under %x", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// reopenAfterIndexing applies cmd (150 entries from index 0) to a ledger that does not index,
// runs the index step's transactions for kinds by hand, one each, as a step that crashed after
// them would have, closes the ledger and returns it reopened and started, with all 150 entries
// indexed again.
func reopenAfterIndexing(t *testing.T, cmd Command, kinds ...boltstore.IndexKinds) *Ledger {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	l, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	l.Apply([]Command{cmd})
	ids, merkles, ok := l.st.unindexed.hashes(0, 150)
	if !ok {
		t.Fatal("hashes not at hand")
	}
	for _, kind := range kinds {
		err = l.st.db.Update(func(tx *bbolt.Tx) error {
			return boltstore.IndexHashesTx(tx, l.st.tree.TreeId, 0, ids, merkles, kind)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, path, nil)
	waitIndexed(t, l, 150)
	return l
}

// foundByMerkleHash fails t unless Trillian finds test entry i by its Merkle leaf hash, at i.
func foundByMerkleHash(t *testing.T, l *Ledger, i int, treeSize int64) {
	t.Helper()
	var rec Record
	_ = rec.UnmarshalBinary(record(t, i))
	resp, err := l.st.srv.GetInclusionProofByHash(context.Background(), &trillian.GetInclusionProofByHashRequest{
		LogId: l.st.tree.TreeId, LeafHash: rfc6962.DefaultHasher.HashLeaf(rec.Leaf), TreeSize: treeSize,
	})
	if err != nil || len(resp.Proof) != 1 || resp.Proof[0].LeafIndex != int64(i) {
		t.Fatalf("leaf %d by Merkle hash: %v, %v", i, resp, err)
	}
}
