package ledger

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/witnessnet/witnessnet/internal/ledger/runs"
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
// whichever of the four places holds their terms: the B+tree of a file written before terms
// went through runs, pending terms as such a file holds them (one key per entry), the pending
// terms Apply writes (one key per command), the runs the sequencer moves them into; and across a
// restart.
func TestSearchAcrossIndexing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	l := openTest(t, path, nil)
	// Entries 0..29 as an older file holds them: terms in bucketTerms; entries 30..59 as a file
	// written before pending terms were grouped holds them.
	l.Apply([]Command{termEntries(t, 1, 0, 30)})
	l.Apply([]Command{termEntries(t, 2, 30, 30)})
	if err := l.st.db.Update(func(tx *bbolt.Tx) error {
		pending := tx.Bucket(bucketTermsPending)
		for _, first := range []uint64{0, 30} {
			if err := pending.Delete(pendingKey(first)); err != nil {
				return err
			}
		}
		for i := range 60 {
			var hashes []byte
			for _, term := range termsOf(i) {
				if i < 30 {
					if err := tx.Bucket(bucketTerms).Put(termKey(term, uint64(i)), nil); err != nil {
						return err
					}
				}
				h := termHash(term)
				hashes = append(hashes, h[:]...)
			}
			if i >= 30 {
				if err := pending.Put(u64(uint64(i)), hashes); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The rest in commands of 250, with an entry of no terms in each.
	const n = 5060
	for from := 60; from < n; from += 250 {
		c := termEntries(t, uint64(3+from), from, min(250, n-from))
		c.Records[100] = noTerms(t, c.Records[100])
		l.Apply([]Command{c})
	}

	check := func(stage string) {
		t.Helper()
		for _, term := range []string{Term(TermType, "link"), Term(TermDigest, "sha256:3"), Term(TermKey, "17"), Term(TermKey, "4321"), Term(TermKey, "nobody")} {
			var all []uint64
			for i := range n {
				if slices.Contains(termsOfEntry(i), term) {
					all = append(all, uint64(i))
				}
			}
			for _, c := range []struct {
				from  uint64
				limit int
			}{{0, n}, {0, 5}, {25, 10}, {28, 40}, {58, 5}, {150, 7}, {1000, 3}, {4990, 100}, {n, 10}} {
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
	if u := l.Unindexed(); u != 0 {
		t.Fatalf("%d entries unindexed after indexing", u)
	}
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

// termsOfEntry are the terms TestSearchAcrossIndexing gives entry i: entry 160, 410, ... has none.
func termsOfEntry(i int) []string {
	if i >= 60 && (i-60)%250 == 100 {
		return nil
	}
	return termsOf(i)
}

// noTerms is the record raw without its terms.
func noTerms(t *testing.T, raw []byte) []byte {
	var r Record
	if err := r.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	r.Terms = nil
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Indexing steps that end inside a command's pending terms, or where the step's budget of terms
// runs out, move exactly the terms of the entries before the end into runs and keep the rest
// pending under the key of the first entry left; in turn they index every term once, the old
// one-key-per-entry layout included.
func TestIndexTermsSplitsPending(t *testing.T) {
	old := maxIndexTerms
	maxIndexTerms = 25
	t.Cleanup(func() { maxIndexTerms = old })
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "terms.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 210
	termsAt := func(i int) []string {
		switch {
		case i == 50:
			return nil
		case i < 10:
			return []string{Term(TermKey, fmt.Sprint(i)), Term(TermType, "link"), Term(TermDigest, fmt.Sprint(i%3))}
		default:
			return []string{Term(TermKey, fmt.Sprint(i)), Term(TermType, "link")}
		}
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketTermsPending, bucketTermRuns} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		for i := range 10 {
			var hashes []byte
			for _, term := range termsAt(i) {
				h := termHash(term)
				hashes = append(hashes, h[:]...)
			}
			if err := tx.Bucket(bucketTermsPending).Put(u64(uint64(i)), hashes); err != nil {
				return err
			}
		}
		for _, r := range [][2]int{{10, 110}, {110, n}} {
			var p pendingTerms
			for i := r[0]; i < r[1]; i++ {
				p.add(uint64(i), termsAt(i))
			}
			if err := p.put(tx); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for from := uint64(0); from < n; {
		if err := db.Update(func(tx *bbolt.Tx) error {
			to, err := termsEnd(tx, from, min(n, from+40))
			if err != nil {
				return err
			}
			moved := 0
			for i := from; i < to; i++ {
				moved += len(termsAt(int(i)))
			}
			if to <= from || to > from+40 || moved > maxIndexTerms {
				t.Fatalf("a step from %d ends at %d, moving %d terms", from, to, moved)
			}
			if err := indexTerms(tx, from, to); err != nil {
				return err
			}
			// What is left pending starts at to.
			k, _ := tx.Bucket(bucketTermsPending).Cursor().First()
			if k != nil && getU64(k[:8]) < to {
				t.Fatalf("after indexing [%d, %d) terms of entry %d are still pending", from, to, getU64(k[:8]))
			}
			from = to
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		if k := tx.Bucket(bucketTermsPending).Stats().KeyN; k != 0 {
			t.Errorf("%d keys still pending", k)
		}
		rs, err := runs.Open(tx.Bucket(bucketTermRuns), runTerms)
		if err != nil {
			return err
		}
		for _, term := range []string{Term(TermType, "link"), Term(TermDigest, "1"), Term(TermKey, "5"), Term(TermKey, "50"), Term(TermKey, "109"), Term(TermKey, "110")} {
			var want, got []uint64
			for i := range n {
				if slices.Contains(termsAt(i), term) {
					want = append(want, uint64(i))
				}
			}
			h := termHash(term)
			for i := range rs {
				if _, err := rs[i].Find(h[:], 0, func(idx uint64) bool { got = append(got, idx); return true }); err != nil {
					return err
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: indexed at %v, want %v", term, head(got), head(want))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
