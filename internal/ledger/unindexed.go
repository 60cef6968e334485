package ledger

import (
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/witnessnet/witnessnet/internal/ledger/boltstore"
)

// keyIndexed (in bucketMeta) is the count of entries whose identity and Merkle hash are in the
// tree's indexes, and whose search terms are in runs (see index.go). Apply stores leaves without
// index entries; the sequencer goroutine indexes them behind it, indexBatch at a time, as sorted
// runs (boltstore.IndexHashesTx), which costs far less than putting each raft command's few
// hundred random keys into B+trees. Until then the entries' identities and Merkle leaf hashes are
// held in memory (unindexed), rebuilt from the leaves when state.db is opened, so lookups by
// identity, and the deduplication every replica applies, see every entry either way and answer
// the same, and indexing need not read the leaves back.
var keyIndexed = []byte("indexed")

// Entries are indexed indexBatch at a time, or after waiting indexFlush. Each step writes one run
// per index kind, and runs merge fourfold (runs.Add), so a record is rewritten about
// log4(N/indexBatch) times: 16,384 instead of 4,096 saves every record one rewrite, at the cost
// of holding up to that many entries' hashes in memory (unindexed, about 2.5 MB) and of a search
// reading up to that many entries' pending terms (32 bytes a term) where it read a quarter.
const (
	indexBatch = 16384
	indexFlush = time.Second
)

// unindexed maps the identities of the entries [base, base+len(ids)) to their indexes, and keeps
// their Merkle leaf hashes, so that indexing does not read the leaves back.
type unindexed struct {
	mu     sync.Mutex
	base   uint64
	ids    []Identity
	merkle []Identity // the Merkle leaf hash of each entry, beside its identity
	at     map[Identity]uint64
}

func newUnindexed(base uint64, identities, merkles [][]byte) (*unindexed, error) {
	u := &unindexed{base: base, at: make(map[Identity]uint64, len(identities))}
	for i, h := range identities {
		var id, m Identity
		if len(h) != len(id) || len(merkles[i]) != len(m) {
			return nil, fmt.Errorf("entry %d: hashes of %d and %d bytes", base+uint64(i), len(h), len(merkles[i]))
		}
		copy(id[:], h)
		copy(m[:], merkles[i])
		u.append(id, m)
	}
	return u, nil
}

func (u *unindexed) append(id, merkle Identity) {
	u.at[id] = u.base + uint64(len(u.ids))
	u.ids = append(u.ids, id)
	u.merkle = append(u.merkle, merkle)
}

// held is how many entries are not indexed yet.
func (u *unindexed) held() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.ids)
}

// lookup returns the index of an entry not yet indexed.
func (u *unindexed) lookup(id Identity) (uint64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	idx, ok := u.at[id]
	return idx, ok
}

// add records entries appended at from, from+1, ... once their transaction has committed.
func (u *unindexed) add(from uint64, ids, merkles []Identity) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if end := u.base + uint64(len(u.ids)); from != end {
		panic(fmt.Sprintf("ledger: entries appended at %d, after %d", from, end))
	}
	for i, id := range ids {
		u.append(id, merkles[i])
	}
}

// hashes returns the identity and Merkle leaf hashes of the entries [from, to), or false if it
// does not hold them all.
func (u *unindexed) hashes(from, to uint64) (identities, merkles [][]byte, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if from < u.base || to > u.base+uint64(len(u.ids)) || from > to {
		return nil, nil, false
	}
	identities, merkles = make([][]byte, 0, to-from), make([][]byte, 0, to-from)
	for i := from - u.base; i < to-u.base; i++ {
		identities, merkles = append(identities, u.ids[i][:]), append(merkles, u.merkle[i][:])
	}
	return identities, merkles, true
}

// indexedUpTo forgets the entries below to, once their index entries have committed, and says
// whether there were any.
func (u *unindexed) indexedUpTo(to uint64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	before := u.base
	for u.base < to && len(u.ids) > 0 {
		delete(u.at, u.ids[0])
		u.ids, u.merkle = u.ids[1:], u.merkle[1:]
		u.base++
	}
	if len(u.ids) == 0 {
		u.ids, u.merkle = nil, nil // let the backing arrays go
	}
	return u.base > before
}

// loadUnindexed reads the identities of the entries not yet indexed. A state.db written before
// indexing was deferred has no keyIndexed: every entry in it is indexed, which is recorded once.
func (st *store) loadUnindexed() error {
	var from uint64
	var identities, merkles [][]byte
	var unmarked bool
	err := st.db.View(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		next := getU64(m.Get(keyNext))
		v := m.Get(keyIndexed)
		if unmarked = v == nil; unmarked {
			from = next
			return nil
		}
		if from = getU64(v); from >= next {
			return nil
		}
		var err error
		identities, merkles, err = boltstore.LeafHashesTx(tx, st.tree.TreeId, int64(from), int64(next))
		if err == nil && uint64(len(identities)) != next-from {
			err = fmt.Errorf("%d leaves stored of the %d applied entries from %d", len(identities), next-from, from)
		}
		return err
	})
	if err == nil && unmarked {
		err = st.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyIndexed, u64(from)) })
	}
	if err != nil {
		return fmt.Errorf("read unindexed entries: %w", err)
	}
	st.unindexed, err = newUnindexed(from, identities, merkles)
	return err
}

// indexStep indexes up to indexBatch entries, if at least atLeast are waiting, and reports whether
// it indexed any.
func (l *Ledger) indexStep(atLeast int) (bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := l.st
	if n := st.unindexed.held(); n == 0 || n < atLeast {
		return false, nil
	}
	// Each index is written in a transaction of its own: the identities, the Merkle hashes, then
	// the search terms with the mark of what is indexed. At the largest merges (half a million
	// records) an index's new run, and bbolt's pages for it, are held until the commit, and the
	// indexes reach their largest merges together: committing them apart holds one at a time
	// (a member's heap at a million entries held the Merkle hashes' and the terms' merges, 44
	// MiB, while they shared a transaction). A crash between them loses nothing: each index
	// resumes where it stopped (boltstore.IndexHashesTx; the terms stay pending until indexed).
	var from, to uint64
	var ids, merkles [][]byte
	var atHand bool
	index := func(tx *bbolt.Tx, kinds boltstore.IndexKinds) error {
		// The hashes of the entries Apply stored are at hand; the leaves are read back only
		// if they are not.
		if atHand {
			return boltstore.IndexHashesTx(tx, st.tree.TreeId, int64(from), ids, merkles, kinds)
		}
		return boltstore.IndexLeavesTx(tx, st.tree.TreeId, int64(from), int64(to), kinds)
	}
	err := st.db.Update(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		from = getU64(m.Get(keyIndexed))
		var err error
		if to, err = termsEnd(tx, from, min(getU64(m.Get(keyNext)), from+indexBatch)); err != nil || to <= from {
			return err
		}
		ids, merkles, atHand = st.unindexed.hashes(from, to)
		return index(tx, boltstore.IndexIdentities)
	})
	if err == nil && to > from {
		err = st.db.Update(func(tx *bbolt.Tx) error { return index(tx, boltstore.IndexMerkleHashes) })
	}
	if err == nil && to > from {
		err = st.db.Update(func(tx *bbolt.Tx) error {
			if err := indexTerms(tx, from, to); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keyIndexed, u64(to))
		})
	}
	if err != nil {
		return false, fmt.Errorf("index entries: %w", err)
	}
	return st.unindexed.indexedUpTo(to), nil
}
