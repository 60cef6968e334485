package boltstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/types"
	"github.com/transparency-dev/merkle/compact"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/witnessnet/witnessnet/internal/ledger/runs"
)

var _ storage.LogStorage = (*LogStorage)(nil)

// LogStorage is Trillian's log storage on bbolt.
type LogStorage struct {
	db *bbolt.DB
}

// NewLogStorage returns the log storage over db, creating its top-level buckets and moving the
// Merkle nodes of trees written before node rows into rows (see rows.go). The caller owns db and
// MUST keep it open while the storage is in use.
func NewLogStorage(db *bbolt.DB) (*LogStorage, error) {
	err := db.Update(func(tx *bbolt.Tx) error {
		trees, err := tx.CreateBucketIfNotExists(bucketTrees)
		if err != nil {
			return err
		}
		return trees.ForEach(func(k, _ []byte) error {
			id, err := decodeIndexKey(k)
			if err != nil {
				return err
			}
			return upgradeTree(tx, id)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open: %w", err)
	}
	return &LogStorage{db: db}, nil
}

// CheckDatabaseAccessible implements storage.LogStorage.
func (s *LogStorage) CheckDatabaseAccessible(ctx context.Context) error {
	return checkDB(s.db)
}

// GetActiveLogIDs returns the trees that are LOG or PREORDERED_LOG, ACTIVE or DRAINING, and not
// soft-deleted, as the MySQL provider does.
func (s *LogStorage) GetActiveLogIDs(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		trees, err := listTrees(tx, false)
		for _, t := range trees {
			isLog := t.TreeType == trillian.TreeType_LOG || t.TreeType == trillian.TreeType_PREORDERED_LOG
			active := t.TreeState == trillian.TreeState_ACTIVE || t.TreeState == trillian.TreeState_DRAINING
			if isLog && active {
				ids = append(ids, t.TreeId)
			}
		}
		return err
	})
	return ids, err
}

// begin opens a bbolt transaction for tree. It returns the transaction together with
// storage.ErrTreeNeedsInit when the tree has no root yet, as Trillian's callers expect.
func (s *LogStorage) begin(ctx context.Context, tree *trillian.Tree, writable bool) (*logTX, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tx, err := s.db.Begin(writable)
	if err != nil {
		return nil, err
	}
	lt, err := beginOn(tx, tree)
	if err != nil && err != storage.ErrTreeNeedsInit {
		_ = tx.Rollback()
	}
	return lt, err
}

// beginOn makes tx a Trillian log transaction for tree; see begin.
func beginOn(tx *bbolt.Tx, tree *trillian.Tree) (*logTX, error) {
	tb, err := openTree(tx, tree.GetTreeId())
	if err != nil {
		return nil, err
	}
	lt := &logTX{tx: tx, tb: tb, treeID: tree.GetTreeId(), treeType: tree.GetTreeType(), dequeued: map[string]bool{}}
	root, raw, err := latestRoot(tb)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return lt, storage.ErrTreeNeedsInit
	}
	lt.root, lt.rawRoot = *root, raw
	return lt, nil
}

// SnapshotForTree implements storage.LogStorage: a bbolt read transaction.
func (s *LogStorage) SnapshotForTree(ctx context.Context, tree *trillian.Tree) (storage.ReadOnlyLogTreeTX, error) {
	tx, err := s.begin(ctx, tree, false)
	if err != nil && err != storage.ErrTreeNeedsInit {
		return nil, err
	}
	return tx, err
}

// ReadWriteTransaction implements storage.LogStorage: f runs inside one bbolt write transaction,
// which is committed and fsynced before this returns nil. There is no retry: bbolt serialises
// writers, so a transaction never aborts for contention.
//
// f MUST NOT start another write transaction on the same DB (bbolt's writer lock would deadlock).
func (s *LogStorage) ReadWriteTransaction(ctx context.Context, tree *trillian.Tree, f storage.LogTXFunc) error {
	tx, err := s.begin(ctx, tree, true)
	return run(ctx, tx, err, f)
}

// run runs f on lt, begun with err, and commits lt if f succeeds; a tree that needs its first
// root is no error here, as Trillian's callers expect.
func run(ctx context.Context, lt *logTX, err error, f storage.LogTXFunc) error {
	if err != nil && err != storage.ErrTreeNeedsInit {
		return err
	}
	defer func() { _ = lt.Close() }()
	if err := f(ctx, lt); err != nil {
		return err
	}
	return lt.Commit(ctx)
}

// InTx is Trillian's log storage inside a bbolt write transaction the caller holds, for running
// Trillian's sequencer (log.IntegrateBatch) there: the nodes and roots it writes become durable
// atomically with the caller's own writes in tx, when the caller commits tx, and not before. It
// serves ReadWriteTransaction only, once per call and never concurrently; the other methods fail.
// For a PREORDERED_LOG tree its DequeueLeaves returns what the sequencer reads of a leaf, its
// index and hashes, without the leaf's value.
//
// A ReadWriteTransaction that returns an error may have written part of its work into tx: the
// caller MUST then roll tx back.
type InTx struct {
	tx    *bbolt.Tx
	known LeafHashes // nil: every leaf is read from tx
}

// LeafHashes gives the Merkle leaf hash and identity hash of a leaf the caller stored in the
// transaction, by index, or ok false for a leaf it does not have at hand.
type LeafHashes func(index int64) (merkle, identity []byte, ok bool)

var _ storage.LogStorage = InTx{}

// ErrInTx is what InTx answers for everything but ReadWriteTransaction.
var ErrInTx = errors.New("boltstore: only ReadWriteTransaction runs inside a caller's transaction")

// StorageInTx returns the log storage inside tx, a writable transaction.
func StorageInTx(tx *bbolt.Tx) InTx { return InTx{tx: tx} }

// StorageInTxKnowing is StorageInTx for a caller that has the hashes of leaves it stored in tx
// at hand: the sequencer takes those from known instead of reading the stored leaves back. The
// hashes known gives MUST be those of the leaves stored in tx at those indexes.
func StorageInTxKnowing(tx *bbolt.Tx, known LeafHashes) InTx { return InTx{tx: tx, known: known} }

// ReadWriteTransaction runs f on tx. Commit marks f's work done without committing tx; Close
// undoes nothing (see InTx).
func (s InTx) ReadWriteTransaction(ctx context.Context, tree *trillian.Tree, f storage.LogTXFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.tx.Writable() {
		return status.Error(codes.FailedPrecondition, "read-only transaction")
	}
	lt, err := beginOn(s.tx, tree)
	if lt != nil {
		lt.borrowed, lt.known = true, s.known
	}
	return run(ctx, lt, err, f)
}

func (InTx) CheckDatabaseAccessible(context.Context) error { return ErrInTx }

func (InTx) GetActiveLogIDs(context.Context) ([]int64, error) { return nil, ErrInTx }

func (InTx) SnapshotForTree(context.Context, *trillian.Tree) (storage.ReadOnlyLogTreeTX, error) {
	return nil, ErrInTx
}

func (InTx) QueueLeaves(context.Context, *trillian.Tree, []*trillian.LogLeaf, time.Time) ([]*trillian.QueuedLogLeaf, error) {
	return nil, ErrInTx
}

func (InTx) AddSequencedLeaves(context.Context, *trillian.Tree, []*trillian.LogLeaf, time.Time) ([]*trillian.QueuedLogLeaf, error) {
	return nil, ErrInTx
}

// QueueLeaves implements storage.LogStorage for LOG trees.
func (s *LogStorage) QueueLeaves(ctx context.Context, tree *trillian.Tree, leaves []*trillian.LogLeaf, queueTimestamp time.Time) ([]*trillian.QueuedLogLeaf, error) {
	var out []*trillian.QueuedLogLeaf
	err := s.update(ctx, tree.GetTreeId(), func(tb *treeBuckets) error {
		var err error
		out, err = queueLeaves(tb, leaves, queueTimestamp)
		return err
	})
	return out, err
}

// AddSequencedLeaves implements storage.LogStorage. See AddSequencedLeavesTx for the semantics.
func (s *LogStorage) AddSequencedLeaves(ctx context.Context, tree *trillian.Tree, leaves []*trillian.LogLeaf, timestamp time.Time) ([]*trillian.QueuedLogLeaf, error) {
	var out []*trillian.QueuedLogLeaf
	err := s.update(ctx, tree.GetTreeId(), func(tb *treeBuckets) error {
		var err error
		out, err = addSequencedLeaves(tb, leaves, timestamp, true, nil)
		return err
	})
	return out, err
}

func (s *LogStorage) update(ctx context.Context, treeID int64, f func(*treeBuckets) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		tb, err := openTree(tx, treeID)
		if err != nil {
			return err
		}
		return f(tb)
	})
}

// AddSequencedLeavesTx stores leaves at their LeafIndex inside the caller's write transaction,
// with the semantics of storage.LogStorage.AddSequencedLeaves: the result has one entry per leaf,
// in order, with status
//   - OK: stored;
//   - AlreadyExists: an identical leaf (identity hash, Merkle hash, value and extra data) is
//     already at that index; the stored leaf is returned;
//   - FailedPrecondition: a different leaf is at that index, or a leaf with the same identity hash
//     is stored elsewhere; the stored leaf is returned;
//   - OutOfRange: LeafIndex is negative.
//
// A leaf whose hashes are not 32 bytes fails the whole call. Nothing is written unless the caller
// commits tx; the caller's other writes in tx become durable atomically with the leaves.
func AddSequencedLeavesTx(tx *bbolt.Tx, treeID int64, leaves []*trillian.LogLeaf, ts time.Time) ([]*trillian.QueuedLogLeaf, error) {
	tb, err := openTree(tx, treeID)
	if err != nil {
		return nil, err
	}
	return addSequencedLeaves(tb, leaves, ts, true, nil)
}

// AddSequencedLeavesUnindexedTx is AddSequencedLeavesTx for a caller that keeps leaves unique by
// identity hash itself and indexes them later, many at a time, with IndexLeavesTx: it stores each
// leaf at its LeafIndex and writes no identity or Merkle hash index entry. Until IndexLeavesTx
// has covered a leaf, GetLeavesByHash and SequencedIndexesTx do not find it, and a leaf with its
// identity hash is not refused. The stored leaves are encoded in arena's memory unless arena is
// nil (see Arena).
func AddSequencedLeavesUnindexedTx(tx *bbolt.Tx, treeID int64, leaves []*trillian.LogLeaf, ts time.Time, arena *Arena) ([]*trillian.QueuedLogLeaf, error) {
	tb, err := openTree(tx, treeID)
	if err != nil {
		return nil, err
	}
	return addSequencedLeaves(tb, leaves, ts, false, arena)
}

// IndexLeavesTx writes the identity and Merkle hash index entries of the sequenced leaves
// [from, to), stored with AddSequencedLeavesUnindexedTx, as one sorted run merged with earlier
// runs (see runs.go): the cost per leaf grows with the logarithm of the tree's size, where
// entries put one by one into a B+tree dirty a page each. Ranges are indexed in increasing
// order: leaves below the end of the last range indexed count as indexed, so indexing them again
// does nothing. A missing leaf, or an identity hash indexed at another leaf, is an error. kinds
// says which of the two indexes to write: a caller may write them in separate transactions,
// since each index resumes where it stopped.
func IndexLeavesTx(tx *bbolt.Tx, treeID int64, from, to int64, kinds IndexKinds) error {
	tb, err := openTree(tx, treeID)
	if err != nil {
		return err
	}
	return indexLeaves(tx, treeID, tb, from, to, storedHashes(tb), kinds)
}

// IndexHashesTx is IndexLeavesTx for a caller that kept the hashes of the leaves it stored: it
// indexes the leaves [from, from+len(identities)) under identities[i] and merkles[i], which MUST
// be the identity and Merkle leaf hashes of leaf from+i, without reading the leaves back (they
// are most of what the file holds, and indexing would otherwise read each page of them again).
func IndexHashesTx(tx *bbolt.Tx, treeID int64, from int64, identities, merkles [][]byte, kinds IndexKinds) error {
	if len(identities) != len(merkles) {
		return status.Errorf(codes.InvalidArgument, "%d identity hashes and %d Merkle leaf hashes", len(identities), len(merkles))
	}
	tb, err := openTree(tx, treeID)
	if err != nil {
		return err
	}
	return indexLeaves(tx, treeID, tb, from, from+int64(len(identities)), givenHashes(from, identities, merkles), kinds)
}

// LeafHashesTx returns the identity and Merkle leaf hashes of the sequenced leaves [from, to), in
// order; a leaf missing in the range is an error.
func LeafHashesTx(tx *bbolt.Tx, treeID int64, from, to int64) (identities, merkles [][]byte, err error) {
	tb, err := openTree(tx, treeID)
	if err != nil {
		return nil, nil, err
	}
	err = storedHashes(tb)(from, to, func(_ int64, merkle, identity []byte) error {
		identities, merkles = append(identities, identity), append(merkles, merkle)
		return nil
	})
	return identities, merkles, err
}

// SequencedIndexesTx looks leaves up by identity hash inside the caller's transaction: for each
// hash, the index of the sequenced leaf that has it, or -1 if there is none (or the hash is nil).
func SequencedIndexesTx(tx *bbolt.Tx, treeID int64, identityHashes [][]byte) ([]int64, error) {
	tb, err := openTree(tx, treeID)
	if err != nil {
		return nil, err
	}
	rs, err := runs.Open(tb.runs, runIdent)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(identityHashes))
	legacy := newLegacy(tb.ident)
	for i, h := range identityHashes {
		out[i] = -1
		if h == nil {
			continue
		}
		// Identities stored with AddSequencedLeavesTx are in the B+tree; an empty one is not
		// searched.
		if ref := legacy.get(h); ref != nil {
			kind, index, _, err := decodeRef(ref)
			if err != nil {
				return nil, err
			}
			if kind == refSequenced {
				out[i] = index
			}
			continue
		}
		for j := range rs {
			found, err := rs[j].Find(h, 0, func(idx uint64) bool { out[i] = int64(idx); return false })
			if err != nil {
				return nil, err
			}
			if found {
				break
			}
		}
	}
	return out, nil
}

// LatestRoot returns the tree's latest log root, or storage.ErrTreeNeedsInit if it has none.
func (s *LogStorage) LatestRoot(treeID int64) (*types.LogRootV1, error) {
	var root *types.LogRootV1
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		root, err = LatestRootTx(tx, treeID)
		return err
	})
	return root, err
}

// LatestRootTx is LatestRoot inside the caller's transaction.
func LatestRootTx(tx *bbolt.Tx, treeID int64) (*types.LogRootV1, error) {
	tb, err := openTree(tx, treeID)
	if err != nil {
		return nil, err
	}
	root, _, err := latestRoot(tb)
	if err == nil && root == nil {
		err = storage.ErrTreeNeedsInit
	}
	return root, err
}

// RootAt returns the last root stored with the given tree size, or nil if none was.
func (s *LogStorage) RootAt(treeID int64, size uint64) (*types.LogRootV1, error) {
	var root *types.LogRootV1
	err := s.db.View(func(tx *bbolt.Tx) error {
		tb, err := openTree(tx, treeID)
		if err != nil {
			return err
		}
		v := tb.root.Get(u64(size))
		if v == nil {
			return nil
		}
		root = &types.LogRootV1{}
		return root.UnmarshalBinary(v)
	})
	return root, err
}

// ReadNodes returns the stored hashes of the Merkle nodes ids, in order, nil for a node not
// stored. It needs no Trillian transaction, so tile serving does not contend with the sequencer
// beyond bbolt's lock-free readers.
func (s *LogStorage) ReadNodes(ctx context.Context, treeID int64, ids []compact.NodeID) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out [][]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		out, err = ReadNodesTx(tx, treeID, ids)
		return err
	})
	return out, err
}

// ReadNodesTx is ReadNodes inside the caller's transaction. The returned hashes are copies and
// stay valid after tx ends.
func ReadNodesTx(tx *bbolt.Tx, treeID int64, ids []compact.NodeID) ([][]byte, error) {
	tb, err := openTree(tx, treeID)
	if err != nil {
		return nil, err
	}
	return readNodes(tb.rows, ids)
}

// ReadLeaves returns the stored leaves [start, start+count) that are contiguous from start,
// integrated or not, without a Trillian transaction.
func (s *LogStorage) ReadLeaves(ctx context.Context, treeID int64, start, count int64) ([]*trillian.LogLeaf, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*trillian.LogLeaf
	err := s.db.View(func(tx *bbolt.Tx) error {
		tb, err := openTree(tx, treeID)
		if err != nil {
			return err
		}
		out, err = contiguousLeaves(tb, start, count, 0)
		return err
	})
	return out, err
}

// EnsureTree returns the tree with the given ID, creating it (with that ID, which a caller can
// keep fixed across nodes) and storing its empty initial root stamped now, if the file has
// neither. Trillian's sequencer needs that initial root before it integrates anything.
func EnsureTree(ctx context.Context, db *bbolt.DB, tree *trillian.Tree, now time.Time) (*trillian.Tree, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if tree.GetTreeId() <= 0 {
		return nil, fmt.Errorf("boltstore: tree ID %d, want > 0", tree.GetTreeId())
	}
	var out *trillian.Tree
	err := db.Update(func(tx *bbolt.Tx) error {
		var err error
		out, err = ensureTreeTx(ctx, tx, tree, now)
		return err
	})
	return out, err
}

// ReadNodeRange returns the hashes of nodes (level, start), (level, start+1), ... up to count of
// them, stopping at the first node not stored: one C2SP tile row is ReadNodeRange(8*L, 256*N, 256).
func (s *LogStorage) ReadNodeRange(ctx context.Context, treeID int64, level uint, start uint64, count int) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if level > 63 || count < 0 {
		return nil, fmt.Errorf("boltstore: node range level %d count %d out of range", level, count)
	}
	var out [][]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		tb, err := openTree(tx, treeID)
		if err != nil {
			return err
		}
		out, err = nodeRange(tb.rows, level, start, count)
		return err
	})
	return out, err
}
