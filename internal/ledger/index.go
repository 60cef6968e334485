package ledger

import (
	"bytes"
	"encoding/binary"

	"go.etcd.io/bbolt"
)

// bucketTerms indexes entries by search term: key term || 0x00 || index (8 bytes, big endian).
// Terms are written in the same transaction as the entry, so the index never names an entry the
// log does not hold, and every replica holds the same index.
var bucketTerms = []byte("ledger/terms")

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

func putTerms(tx *bbolt.Tx, index uint64, terms []string) error {
	b := tx.Bucket(bucketTerms)
	for _, t := range terms {
		if err := b.Put(termKey(t, index), nil); err != nil {
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
	prefix := append([]byte(term), 0)
	err := l.st.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketTerms).Cursor()
		for k, _ := c.Seek(termKey(term, from)); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			if len(k) != len(prefix)+8 {
				continue
			}
			out = append(out, binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return nil
	})
	return out, err
}
