package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"time"

	"github.com/google/trillian"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/util/clock"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"

	"github.com/witnessnet/witnessnet/internal/ledger/boltstore"
)

// Kind says what a replicated command does to the ledger.
type Kind uint8

const (
	// KindEntries appends records (each a marshalled Record) at the next free indexes.
	KindEntries Kind = 1
	// KindBoundary marks the current size as a checkpoint boundary: every node integrates its
	// tree exactly up to it and cosigns its root there, so all nodes cosign the same sizes.
	KindBoundary Kind = 2
)

// Command is one committed raft log entry, decoded.
type Command struct {
	Index   uint64    // raft index
	Kind    Kind      // what to do
	Stamp   time.Time // the proposer's clock; Apply never reads its own
	Records [][]byte  // for KindEntries
}

// Result is the outcome for one record.
type Result struct {
	Index     uint64        // where the entry is (its original index for a duplicate)
	Duplicate bool          // the identity was already in the log
	Err       error         // a deterministic rejection; nothing was stored for this record
	Cosign    *CosignResult // for KindCosign: the group's state after this contribution
}

// Apply applies committed commands in order, all in one bbolt transaction together with the raft
// index of the last one, so a crash leaves either all of them applied or none. Commands at or
// below the applied index are skipped (raft replays its log after a restart). It returns one
// slice of results per command.
//
// A replica that cannot apply a committed command MUST NOT continue: Apply panics on storage
// failure or on a fork (another leaf already at an index), because carrying on would serve a
// state that differs from the other replicas'.
func (l *Ledger) Apply(cmds []Command) [][]Result {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := l.st
	out := make([][]Result, len(cmds))
	next, applied, boundary := l.next.Load(), l.applied.Load(), l.boundary.Load()
	records := 0
	for _, c := range cmds {
		records += len(c.Records)
	}
	st.appending = &appending{from: next, at: make(map[Identity]uint64, records)}
	defer func() { st.appending = nil }()
	var integrated uint64
	var stamp time.Time
	st.arena.Reset() // the transaction that last used it has ended: Apply runs one at a time
	err := st.db.Update(func(tx *bbolt.Tx) error {
		for i, c := range cmds {
			if c.Index != 0 && c.Index <= applied {
				continue
			}
			stamp = c.Stamp
			switch c.Kind {
			case KindEntries:
				res, n, err := st.applyEntries(tx, next, c)
				if err != nil {
					return fmt.Errorf("apply raft index %d: %w", c.Index, err)
				}
				out[i], next = res, n
			case KindCosign:
				res, n, err := st.applyCosign(tx, next, c, l.cfg.Merge)
				if err != nil {
					return fmt.Errorf("apply raft index %d: %w", c.Index, err)
				}
				out[i], next = res, n
			case KindMembership:
				res, err := applyMembership(tx, c)
				if err != nil {
					return fmt.Errorf("apply raft index %d: %w", c.Index, err)
				}
				out[i] = res
			case KindBoundary:
				// The root at a boundary is the one every node cosigns: integrate exactly up
				// to it before the commands after it add more.
				if _, err := st.integrateTx(tx, next, c.Stamp, l.cfg.IntegrateBatch); err != nil {
					return fmt.Errorf("apply raft index %d: %w", c.Index, err)
				}
				if next > boundary {
					if err := tx.Bucket(bucketBoundaries).Put(u64(next), nil); err != nil {
						return err
					}
					boundary = next
				}
				out[i] = []Result{{Index: boundary}}
			default:
				out[i] = []Result{{Err: fmt.Errorf("%w: unknown command kind %d", ErrMalformedRecord, c.Kind)}}
			}
			if c.Index != 0 {
				applied = c.Index
			}
		}
		var err error
		if integrated, err = st.integrateTx(tx, next, stamp, l.cfg.IntegrateBatch); err != nil {
			return fmt.Errorf("integrate up to raft index %d: %w", applied, err)
		}
		m := tx.Bucket(bucketMeta)
		if err := m.Put(keyNext, u64(next)); err != nil {
			return err
		}
		return m.Put(keyApplied, u64(applied))
	})
	if err != nil {
		panic(fmt.Sprintf("ledger: cannot apply committed commands: %v", err))
	}
	st.unindexed.add(st.appending.from, st.appending.ids, st.appending.merkle)
	l.next.Store(next)
	l.applied.Store(applied)
	l.boundary.Store(boundary)
	if integrated > l.integrated.Load() {
		l.integrated.Store(integrated)
		l.notifyChanged()
	}
	l.poke()
	return out
}

// integrateTx runs Trillian's sequencer inside tx, the transaction that applies the entries, so
// that a command's entries and the tree over them become durable in one commit. It integrates
// the tree up to target, at most batch leaves per step and stopping at every boundary on the way
// (a root is stored at each), and returns the tree's size.
//
// Apply never reads its own clock: the roots are stamped with the command's time (the
// proposer's), moved just past the previous root's when that is later, since Trillian refuses a
// root older than the one before it. (Nothing reads a root's time: checkpoints carry none.)
func (st *store) integrateTx(tx *bbolt.Tx, target uint64, stamp time.Time, batch int) (uint64, error) {
	root, err := boltstore.LatestRootTx(tx, st.tree.TreeId)
	if err != nil {
		return 0, err
	}
	size, prev := root.TreeSize, int64(root.TimestampNanos)
	// The sequencer reads the hashes of the entries this transaction appended from memory.
	seen := st.appending
	logs := boltstore.StorageInTxKnowing(tx, func(index int64) (merkle, identity []byte, ok bool) {
		if seen == nil || index < int64(seen.from) || index-int64(seen.from) >= int64(len(seen.ids)) {
			return nil, nil, false
		}
		i := index - int64(seen.from)
		return seen.merkle[i][:], seen.ids[i][:], true
	})
	for size < target {
		at := stamp
		if at.UnixNano() <= prev {
			at = time.Unix(0, prev+1)
		}
		upTo := target
		if k, _ := tx.Bucket(bucketBoundaries).Cursor().Seek(u64(size + 1)); k != nil {
			upTo = min(upTo, binary.BigEndian.Uint64(k))
		}
		n, err := tlog.IntegrateBatch(context.Background(), st.tree, min(int(upTo-size), batch), 0, 0, clock.NewFake(at), logs, quota.Noop())
		if err != nil {
			return 0, err
		}
		if n <= 0 {
			return 0, fmt.Errorf("integrating from size %d toward %d took no leaf", size, target)
		}
		size, prev = size+uint64(n), at.UnixNano()
	}
	return size, nil
}

// applyEntries stores the records of one command from index next on and returns the new next.
func (st *store) applyEntries(tx *bbolt.Tx, next uint64, c Command) ([]Result, uint64, error) {
	res := make([]Result, len(c.Records))
	recs := make([]Record, len(c.Records))
	hashes := make([][]byte, len(c.Records))
	for i, raw := range c.Records {
		if err := recs[i].UnmarshalBinary(raw); err != nil {
			res[i].Err = err
			continue
		}
		hashes[i] = recs[i].Identity[:]
	}
	// An entry is found by identity in the tree's identity index, among the entries not indexed
	// yet, or among those this transaction appended (see keyIndexed).
	stored, err := boltstore.SequencedIndexesTx(tx, st.tree.TreeId, hashes)
	if err != nil {
		return nil, 0, err
	}
	seen := st.appending
	var lh leafHasher
	leaves := make([]*trillian.LogLeaf, 0, len(c.Records))
	var terms pendingTerms
	first := next
	for i := range recs {
		r := &recs[i]
		if res[i].Err != nil {
			continue
		}
		if stored[i] >= 0 {
			res[i] = Result{Index: uint64(stored[i]), Duplicate: true}
			continue
		}
		if idx, ok := st.unindexed.lookup(r.Identity); ok {
			res[i] = Result{Index: idx, Duplicate: true}
			continue
		}
		if idx, ok := seen.at[r.Identity]; ok {
			res[i] = Result{Index: idx, Duplicate: true}
			continue
		}
		seen.at[r.Identity] = next
		seen.ids = append(seen.ids, r.Identity)
		seen.merkle = append(seen.merkle, lh.hash(r.Leaf))
		if r.Blob != nil {
			if err := tx.Bucket(bucketBlobs).Put(u64(next), r.Blob); err != nil {
				return nil, 0, err
			}
		}
		terms.add(next, r.Terms)
		leaves = append(leaves, &trillian.LogLeaf{
			LeafIndex:        int64(next),
			LeafValue:        r.Leaf, // the command's bytes, which nothing changes
			MerkleLeafHash:   seen.merkle[len(seen.merkle)-1][:],
			LeafIdentityHash: r.Identity[:],
		})
		res[i].Index = next
		next++
	}
	if len(leaves) == 0 {
		return res, next, nil
	}
	if err := terms.put(tx); err != nil {
		return nil, 0, err
	}
	stamp := c.Stamp
	if stamp.IsZero() {
		stamp = time.Unix(0, 0)
	}
	queued, err := boltstore.AddSequencedLeavesUnindexedTx(tx, st.tree.TreeId, leaves, stamp, &st.arena)
	if err != nil {
		return nil, 0, fmt.Errorf("store leaves %d..%d: %w", first, next-1, err)
	}
	for _, q := range queued {
		if code := codes.Code(q.GetStatus().GetCode()); code != codes.OK {
			return nil, 0, fmt.Errorf("%w: index %d: %s", ErrFork, q.GetLeaf().GetLeafIndex(), q.GetStatus().GetMessage())
		}
	}
	return res, next, nil
}

// Lookup returns the index of an entry by identity.
func (l *Ledger) Lookup(id Identity) (uint64, error) {
	idx, err := l.LookupAll([]Identity{id})
	if err != nil {
		return 0, err
	}
	if idx[0] < 0 {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return uint64(idx[0]), nil
}

// LookupAll returns the index of each entry by identity, or -1 for one not in the log, in one
// read transaction.
func (l *Ledger) LookupAll(ids []Identity) ([]int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]int64, len(ids))
	hashes := make([][]byte, len(ids))
	for i := range ids {
		if idx, ok := l.st.unindexed.lookup(ids[i]); ok {
			out[i] = int64(idx)
			continue
		}
		hashes[i] = ids[i][:]
	}
	var stored []int64
	err := l.st.db.View(func(tx *bbolt.Tx) error {
		var err error
		stored, err = boltstore.SequencedIndexesTx(tx, l.st.tree.TreeId, hashes)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, h := range hashes {
		if h != nil {
			out[i] = stored[i]
		}
	}
	return out, nil
}

// poke wakes the sequencer without blocking.
func (l *Ledger) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// appending is what the Apply transaction in progress has appended: the identities of the
// entries from index from on, in order, and where each is.
type appending struct {
	from   uint64
	ids    []Identity
	merkle []Identity // Merkle leaf hashes, beside ids
	at     map[Identity]uint64
}

// leafHasher computes RFC 6962 leaf hashes, SHA-256 over 0x00 and the leaf, as
// rfc6962.DefaultHasher.HashLeaf does, with one hash state for a whole command instead of a new
// one and three allocations per leaf on every replica.
type leafHasher struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

var leafPrefix = []byte{rfc6962.RFC6962LeafHashPrefix}

func (l *leafHasher) hash(leaf []byte) Identity {
	if l.h == nil {
		l.h = sha256.New()
	}
	l.h.Reset()
	l.h.Write(leafPrefix)
	l.h.Write(leaf)
	return Identity(l.h.Sum(l.sum[:0]))
}
