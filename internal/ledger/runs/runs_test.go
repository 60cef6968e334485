package runs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
)

func hashOf(i int) []byte {
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return h[:]
}

func openBucket(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "runs.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("runs")); return err }); err != nil {
		t.Fatal(err)
	}
	return db
}

// smallRuns makes chunks and the merge limit small enough for a test's few thousand records
// to cross both.
func smallRuns(t *testing.T, chunk, merge int) {
	oldChunk, oldMerge := chunkRecords, maxMerge
	chunkRecords, maxMerge = chunk, merge
	t.Cleanup(func() { chunkRecords, maxMerge = oldChunk, oldMerge })
}

// After every Add, Find answers what a map from hash to indexes answers, from any starting index
// and stopping where asked, for hashes with one entry, hashes with many entries across chunk
// boundaries and runs, and absent hashes; below the merge limit the runs stay within fanIn-1 per
// fourfold of records.
func TestMatchesModel(t *testing.T) {
	smallRuns(t, 3, 200)
	db := openBucket(t)
	rng := rand.New(rand.NewPCG(3, 4))
	model := map[string][]uint64{}
	var keys [][]byte
	next := uint64(0)
	for step := range 120 {
		n := 1 + rng.IntN(12)
		if step%17 == 16 {
			n = 0 // an empty range
		}
		var rs Records
		for range n {
			// A few hashes recur, as a search term does.
			h := hashOf(int(next))
			if len(keys) > 0 && rng.IntN(3) == 0 {
				h = keys[rng.IntN(min(len(keys), 5))]
			} else {
				keys = append(keys, h)
			}
			rs.Append(h, next)
			model[string(h)] = append(model[string(h)], next)
			next++
		}
		start := int64(next) - int64(n)
		if err := db.Update(func(tx *bbolt.Tx) error {
			return Add(tx.Bucket([]byte("runs")), 't', start, int64(next), rs, false)
		}); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if err := db.View(func(tx *bbolt.Tx) error {
			open, err := Open(tx.Bucket([]byte("runs")), 't')
			if err != nil {
				return err
			}
			full := 0
			for _, r := range open {
				if r.records*2 > maxMerge {
					full++
				}
			}
			if limit := (fanIn-1)*(bits.Len(uint(next))/2+1) + full; len(open) > limit {
				t.Errorf("step %d: %d runs for %d records", step, len(open), next)
			}
			for _, h := range append(slices.Clone(keys), hashOf(-1-step)) {
				want := model[string(h)]
				from := uint64(0)
				if len(want) > 1 {
					from = want[rng.IntN(len(want))]
				}
				limit := 1 + rng.IntN(4)
				var got []uint64
				for i := range open {
					stopped, err := open[i].Find(h, from, func(idx uint64) bool {
						got = append(got, idx)
						return len(got) < limit
					})
					if err != nil {
						return err
					}
					if stopped {
						break
					}
				}
				var exp []uint64
				for _, idx := range want {
					if idx >= from && len(exp) < limit {
						exp = append(exp, idx)
					}
				}
				if !slices.Equal(got, exp) {
					t.Fatalf("step %d: %x from %d, limit %d: %v, want %v", step, h[:4], from, limit, got, exp)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// An index of unique hashes refuses a hash twice, within what is added and in a merge.
func TestUnique(t *testing.T) {
	db := openBucket(t)
	add := func(start, end int64, hashes ...[]byte) error {
		var rs Records
		for i, h := range hashes {
			rs.Append(h, uint64(start)+uint64(i))
		}
		return db.Update(func(tx *bbolt.Tx) error { return Add(tx.Bucket([]byte("runs")), 'i', start, end, rs, true) })
	}
	if err := add(0, 2, hashOf(1), hashOf(1)); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("one hash twice in a run: %v", err)
	}
	// Runs of one record each: the fanIn-th merges them all.
	for i := range fanIn - 1 {
		if err := add(int64(i), int64(i+1), hashOf(1+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := add(int64(fanIn-1), int64(fanIn), hashOf(1)); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("a hash merged with its twin: %v", err)
	}
	if err := add(0, 1, hashOf(100)); err == nil {
		t.Fatal("added a range below the end of the last")
	}
}

// The Bloom filter never misses a hash it holds and answers about 1% of others.
func TestBloom(t *testing.T) {
	const n = 20000
	f := make([]byte, bloomSize(n))
	for i := range n {
		bloomAdd(f, hashOf(i))
	}
	falsePositives := 0
	for i := range n {
		if !bloomHas(f, hashOf(i)) {
			t.Fatalf("hash %d added and not found", i)
		}
		if bloomHas(f, hashOf(n+i)) {
			falsePositives++
		}
	}
	if rate := float64(falsePositives) / n; rate > 0.02 {
		t.Errorf("false positive rate %.3f", rate)
	}
}

// Runs of one size merge fanIn at a time: after 4^k equal batches each record has been written k
// times (merging pairs writes it 1.4·k; 5.8 times here), and the index holds at most fanIn-1 runs
// per fourfold. Batches of varied size stay within the same bounds.
func TestMergeFanIn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch func(rng *rand.Rand) int
	}{
		{"equal", func(*rand.Rand) int { return 16 }},
		{"varied", func(rng *rand.Rand) int { return 1 + rng.IntN(32) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openBucket(t)
			rng := rand.New(rand.NewPCG(5, 6))
			next, written, most := 0, 0, 0
			for range 256 {
				n := tc.batch(rng)
				var rs Records
				for i := range n {
					rs.Append(hashOf(next+i), uint64(next+i))
				}
				if err := db.Update(func(tx *bbolt.Tx) error {
					b := tx.Bucket([]byte("runs"))
					if err := Add(b, 'i', int64(next), int64(next+n), rs, true); err != nil {
						return err
					}
					hs, err := headers(b, 'i')
					written += hs[len(hs)-1].records // the run just written, merged or not
					most = max(most, len(hs))
					return err
				}); err != nil {
					t.Fatal(err)
				}
				next += n
			}
			// 256 batches are four fourfolds.
			if amp := float64(written) / float64(next); amp > 4.5 {
				t.Errorf("each record written %.2f times", amp)
			}
			if limit := (fanIn - 1) * 6; most > limit {
				t.Errorf("%d runs at once, more than %d", most, limit)
			}
			t.Logf("%d records, each written %.2f times; at most %d runs", next, float64(written)/float64(next), most)
		})
	}
}

// BenchmarkSortRecords sorts the records of one index step (4,096 entries) by hash.
func BenchmarkSortRecords(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	var rs Records
	for i := range 4096 {
		h := make([]byte, HashSize)
		for j := range h {
			h[j] = byte(rng.Uint32())
		}
		rs.Append(h, uint64(i))
	}
	for b.Loop() {
		if _, err := sortRecords(rs, true); err != nil {
			b.Fatal(err)
		}
	}
}

// sortRecords orders records by hash, then index, whatever their first bytes share.
func TestSortRecordsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var rs Records
	for i := range 2000 {
		h := make([]byte, HashSize)
		switch i % 4 {
		case 0: // random
			for j := range h {
				h[j] = byte(rng.Uint32())
			}
		case 1: // the first 8 bytes shared with others, differing after
			h[9] = byte(rng.Uint32())
			h[31] = byte(i)
		default: // one of a few hashes, repeated at many indexes
			h[0] = byte(rng.IntN(3))
		}
		rs.Append(h, uint64(rng.IntN(1<<20)))
	}
	got, err := sortRecords(rs, false)
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]byte, rs.Len())
	for i := range want {
		want[i] = rs.at(i)
	}
	slices.SortFunc(want, bytes.Compare)
	for i := range want {
		if !bytes.Equal(got.at(i), want[i]) {
			t.Fatalf("record %d: %x, want %x", i, got.at(i), want[i])
		}
	}
}
