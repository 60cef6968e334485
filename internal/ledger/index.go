package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/witnessnet/witnessnet/internal/ledger/runs"
)

// The search index maps a term to the entries indexed under it. An in-toto link brings a term
// for every material and product digest, random strings that a B+tree would take at one dirty
// page each, so terms go through two stages, both replicated state:
//
//   - Apply writes the terms of a command's entries, hashed, as one value in bucketTermsPending
//     (a run's records: hash and entry index, in index order) under the index of the first
//     entry with terms: appending in key order, in the same transaction as the entries, so the
//     index never names an entry the log does not hold and every replica holds the same index;
//   - the sequencer goroutine moves them, with the entries' identities (see unindexed.go), into
//     sorted runs in bucketTermRuns (package runs), and deletes them from bucketTermsPending in
//     the same transaction.
//
// Entries appended before terms went this way keep theirs in bucketTerms. Every entry's terms
// are in exactly one of the three places, and the places hold increasing ranges of entries, so
// a search reads them in turn, in one snapshot.
//
// bucketTermsPending maps pendingKey(first index) to a command's run records; a file written
// before may also hold an entry's index (8 bytes) mapped to the SHA-256 of each of its terms.
var (
	bucketTerms        = []byte("ledger/terms")        // term || 0x00 || index (8B BE) -> empty
	bucketTermsPending = []byte("ledger/termspending") // see above
	bucketTermRuns     = []byte("ledger/termruns")     // runs of kind runTerms
)

const runTerms = 't'

// maxIndexTerms bounds the terms one indexing step moves into runs (10 MiB of records); a
// variable so that tests can make steps end inside a command's terms.
var maxIndexTerms = 1 << 18

// Search term prefixes the node writes. A term is "<prefix>:<value>".
const (
	TermType    = "type"    // layout, link, attestation
	TermLayout  = "layout"  // sha256:<hex> of the layout a link belongs to (and a layout's own id)
	TermStep    = "step"    // <layout id>/<step name>
	TermKey     = "key"     // key id of a signer
	TermDigest  = "digest"  // sha256:<hex> of a subject, material or product
	TermPending = "pending" // the threshold co-signing group an entry completed
)

// Term joins a prefix and a value.
func Term(prefix, value string) string { return prefix + ":" + value }

func termKey(term string, index uint64) []byte {
	k := make([]byte, 0, len(term)+9)
	k = append(k, term...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, index)
}

func termHash(term string) [32]byte { return sha256.Sum256([]byte(term)) }

// pendingKey is the key of the pending terms of the entries from index first on. Keys of 8 bytes
// (an entry's index) hold the hashes of one entry's terms, as files written before hold them.
func pendingKey(first uint64) []byte { return append(u64(first), 'r') }

// pendingTerms are the terms one Apply transaction writes, as a run's records.
type pendingTerms struct {
	first uint64
	recs  runs.Records
}

// add adds the terms of the entry at index, which follows every entry added before.
func (p *pendingTerms) add(index uint64, terms []string) {
	for _, t := range terms {
		h := termHash(t)
		p.addHash(index, h[:])
	}
}

func (p *pendingTerms) addHash(index uint64, h []byte) {
	if len(p.recs) == 0 {
		p.first = index
	}
	p.recs.Append(h, index)
}

// put records the terms until indexTerms moves them into runs.
func (p *pendingTerms) put(tx *bbolt.Tx) error {
	if len(p.recs) == 0 {
		return nil
	}
	return tx.Bucket(bucketTermsPending).Put(pendingKey(p.first), p.recs)
}

// eachPending calls fn for each pending term of the entries from index from on, in index order,
// with the key that holds it, until fn returns false.
func eachPending(b *bbolt.Bucket, from uint64, fn func(key []byte, index uint64, hash []byte) bool) error {
	c := b.Cursor()
	k, v := c.Seek(u64(from))
	// The value before may hold entries from index from on.
	if pk, pv := c.Prev(); pk != nil && len(pk) == 9 {
		k, v = pk, pv
	} else if k, v = c.Seek(u64(from)); k == nil {
		return nil
	}
	for ; k != nil; k, v = c.Next() {
		switch {
		case len(k) == 8 && len(v)%sha256.Size == 0:
			if idx := getU64(k); idx >= from {
				for h := range slices.Chunk(v, sha256.Size) {
					if !fn(k, idx, h) {
						return nil
					}
				}
			}
		case len(k) == 9 && k[8] == 'r' && len(v)%(runs.HashSize+8) == 0:
			recs := runs.Records(v)
			for i := range recs.Len() {
				if idx := recs.Index(i); idx >= from && !fn(k, idx, recs.Hash(i)) {
					return nil
				}
			}
		default:
			return fmt.Errorf("pending terms under %x: %d bytes", k, len(v))
		}
	}
	return nil
}

// termsEnd is where an indexing step from from should end, at most to: before the terms it
// would move exceed maxIndexTerms, but after at least one entry.
func termsEnd(tx *bbolt.Tx, from, to uint64) (uint64, error) {
	n, end := 0, to
	err := eachPending(tx.Bucket(bucketTermsPending), from, func(_ []byte, idx uint64, _ []byte) bool {
		if idx >= to {
			return false
		}
		if n++; n > maxIndexTerms && idx > from {
			end = idx
			return false
		}
		return true
	})
	return end, err
}

// indexTerms moves the pending terms of the entries [from, to) into a run. A value that also
// holds entries from to on keeps them, under the key of the first of them.
func indexTerms(tx *bbolt.Tx, from, to uint64) error {
	pending := tx.Bucket(bucketTermsPending)
	var recs runs.Records
	var done [][]byte
	var rest pendingTerms
	err := eachPending(pending, from, func(k []byte, idx uint64, h []byte) bool {
		if len(done) == 0 || !bytes.Equal(done[len(done)-1], k) {
			if idx >= to {
				return false // the keys from here on hold entries from to on
			}
			done = append(done, bytes.Clone(k))
		}
		if idx < to {
			recs.Append(h, idx)
		} else {
			rest.addHash(idx, h)
		}
		return true
	})
	if err != nil {
		return err
	}
	b := tx.Bucket(bucketTermRuns)
	start, err := runs.End(b, runTerms)
	if err != nil {
		return err
	}
	if err := runs.Add(b, runTerms, max(int64(from), start), int64(to), recs, false); err != nil {
		return fmt.Errorf("index terms of entries [%d, %d): %w", from, to, err)
	}
	for _, k := range done {
		if err := pending.Delete(k); err != nil {
			return err
		}
	}
	return rest.put(tx)
}

// Search returns up to limit indexes of entries indexed under term, in ascending order, starting
// at index from.
func (l *Ledger) Search(term string, from uint64, limit int) ([]uint64, error) {
	if !validTerm(term) || limit <= 0 {
		return nil, nil
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []uint64
	add := func(idx uint64) bool {
		// The places hold increasing ranges of entries; an entry with a term twice is found once.
		if len(out) == 0 || out[len(out)-1] != idx {
			out = append(out, idx)
		}
		return len(out) < limit
	}
	h := termHash(term)
	err := l.st.db.View(func(tx *bbolt.Tx) error {
		prefix := append([]byte(term), 0)
		c := tx.Bucket(bucketTerms).Cursor()
		for k, _ := c.Seek(termKey(term, from)); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			if len(k) == len(prefix)+8 {
				add(binary.BigEndian.Uint64(k[len(prefix):]))
			}
		}
		rs, err := runs.Open(tx.Bucket(bucketTermRuns), runTerms)
		if err != nil {
			return err
		}
		for i := 0; i < len(rs) && len(out) < limit; i++ {
			if _, err := rs[i].Find(h[:], from, add); err != nil {
				return err
			}
		}
		if len(out) < limit {
			return eachPending(tx.Bucket(bucketTermsPending), from, func(_ []byte, idx uint64, th []byte) bool {
				return !bytes.Equal(th, h[:]) || add(idx)
			})
		}
		return nil
	})
	return out, err
}
