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
//   - Apply writes an entry's terms, hashed, under its index in bucketTermsPending: appending in
//     key order, in the same transaction as the entry, so the index never names an entry the log
//     does not hold and every replica holds the same index;
//   - the sequencer goroutine moves them, with the entries' identities (see unindexed.go), into
//     sorted runs in bucketTermRuns (package runs), and deletes them from bucketTermsPending in
//     the same transaction.
//
// Entries appended before terms went this way keep theirs in bucketTerms. Every entry's terms
// are in exactly one of the three places, and the places hold increasing ranges of entries, so
// a search reads them in turn, in one snapshot.
var (
	bucketTerms        = []byte("ledger/terms")        // term || 0x00 || index (8B BE) -> empty
	bucketTermsPending = []byte("ledger/termspending") // index (8B BE) -> SHA-256 of each term
	bucketTermRuns     = []byte("ledger/termruns")     // runs of kind runTerms
)

const runTerms = 't'

// maxIndexTerms bounds the terms one indexing step moves into runs (10 MiB of records).
const maxIndexTerms = 1 << 18

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

// putTerms records an appended entry's terms until indexTerms moves them into runs.
func putTerms(tx *bbolt.Tx, index uint64, terms []string) error {
	if len(terms) == 0 {
		return nil
	}
	v := make([]byte, 0, len(terms)*sha256.Size)
	for _, t := range terms {
		h := termHash(t)
		v = append(v, h[:]...)
	}
	return tx.Bucket(bucketTermsPending).Put(u64(index), v)
}

// termsEnd is where an indexing step from from should end, at most to: before the terms it
// would move exceed maxIndexTerms, but after at least one entry.
func termsEnd(tx *bbolt.Tx, from, to uint64) uint64 {
	c := tx.Bucket(bucketTermsPending).Cursor()
	n := 0
	for k, v := c.Seek(u64(from)); k != nil; k, v = c.Next() {
		idx := getU64(k)
		if idx >= to {
			break
		}
		if n += len(v) / sha256.Size; n > maxIndexTerms && idx > from {
			return idx
		}
	}
	return to
}

// indexTerms moves the pending terms of the entries [from, to) into a run.
func indexTerms(tx *bbolt.Tx, from, to uint64) error {
	pending := tx.Bucket(bucketTermsPending)
	var recs runs.Records
	var done [][]byte
	c := pending.Cursor()
	for k, v := c.Seek(u64(from)); k != nil && getU64(k) < to; k, v = c.Next() {
		if len(k) != 8 || len(v)%sha256.Size != 0 {
			return fmt.Errorf("pending terms of entry %x: %d bytes", k, len(v))
		}
		for h := range slices.Chunk(v, sha256.Size) {
			recs.Append(h, getU64(k))
		}
		done = append(done, bytes.Clone(k))
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
	return nil
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
		out = append(out, idx)
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
		c = tx.Bucket(bucketTermsPending).Cursor()
		for k, v := c.Seek(u64(from)); k != nil && len(out) < limit; k, v = c.Next() {
			for th := range slices.Chunk(v, sha256.Size) {
				if bytes.Equal(th, h[:]) {
					add(getU64(k))
					break
				}
			}
		}
		return nil
	})
	return out, err
}
