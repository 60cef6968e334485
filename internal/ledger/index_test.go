package ledger

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// termsOf are the search terms of test entry i: one every entry has, one every seventh shares,
// one of its own.
func termsOf(i int) []string {
	return []string{Term(TermType, "link"), Term(TermDigest, fmt.Sprintf("sha256:%d", i%7)), Term(TermKey, fmt.Sprint(i))}
}

func termEntries(t *testing.T, raftIndex uint64, from, n int) Command {
	c := Command{Index: raftIndex, Kind: KindEntries, Stamp: time.Unix(1700000000, 0)}
	for i := from; i < from+n; i++ {
		env := fmt.Appendf(nil, `{"payloadType":"t","payload":"%d","signatures":[]}`, i)
		leaf, blob, err := NewLeaf(env, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := (&Record{Identity: IdentityOf(env), Leaf: leaf, Blob: blob, Terms: termsOf(i)}).MarshalBinary()
		c.Records = append(c.Records, b)
	}
	return c
}

// Search finds the same entries, in order, from any starting index and up to any limit,
// whichever of the three places holds their terms: the B+tree of a file written before terms
// went through runs, the pending terms Apply writes, the runs the sequencer moves them into;
// and across a restart.
func TestSearchAcrossIndexing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	l := openTest(t, path, nil)
	// Entries 0..29 as an older file holds them: terms in bucketTerms.
	l.Apply([]Command{termEntries(t, 1, 0, 30)})
	if err := l.st.db.Update(func(tx *bbolt.Tx) error {
		for i := range 30 {
			if err := tx.Bucket(bucketTermsPending).Delete(u64(uint64(i))); err != nil {
				return err
			}
			for _, term := range termsOf(i) {
				if err := tx.Bucket(bucketTerms).Put(termKey(term, uint64(i)), nil); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	l.Apply([]Command{termEntries(t, 2, 30, 5000)})
	const n = 5030

	check := func(stage string) {
		t.Helper()
		for _, term := range []string{Term(TermType, "link"), Term(TermDigest, "sha256:3"), Term(TermKey, "17"), Term(TermKey, "4321"), Term(TermKey, "nobody")} {
			var all []uint64
			for i := range n {
				if slices.Contains(termsOf(i), term) {
					all = append(all, uint64(i))
				}
			}
			for _, c := range []struct {
				from  uint64
				limit int
			}{{0, n}, {0, 5}, {25, 10}, {28, 40}, {1000, 3}, {4990, 100}, {n, 10}} {
				var want []uint64
				for _, i := range all {
					if i >= c.from && len(want) < c.limit {
						want = append(want, i)
					}
				}
				got, err := l.Search(term, c.from, c.limit)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: %s from %d, limit %d: %d results %v, want %d %v", stage, term, c.from, c.limit, len(got), head(got), len(want), head(want))
				}
			}
		}
	}
	check("pending")
	l.Start()
	waitSize(t, l, n)
	for deadline := time.Now().Add(20 * time.Second); indexedCount(t, l) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("indexed %d of %d", indexedCount(t, l), n)
		}
	}
	check("in runs")
	var pending int
	l.view(func(tx *bbolt.Tx) error { pending = tx.Bucket(bucketTermsPending).Stats().KeyN; return nil })
	if pending != 0 {
		t.Fatalf("%d entries' terms still pending after indexing", pending)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, path, nil)
	check("reopened")
}

func head(s []uint64) []uint64 { return s[:min(len(s), 8)] }
