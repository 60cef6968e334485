package boltstore

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/storage/tree"
	"github.com/google/trillian/types"
	"github.com/transparency-dev/merkle/compact"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var _ storage.LogTreeTX = (*logTX)(nil)

// logTX is one bbolt transaction seen as a Trillian log transaction. Like the SQL providers it
// reads the latest root once, when it begins; reads of leaves and nodes see the transaction's own
// writes.
type logTX struct {
	mu       sync.Mutex
	tx       *bbolt.Tx // nil once committed or closed
	tb       *treeBuckets
	treeID   int64
	treeType trillian.TreeType
	root     types.LogRootV1
	rawRoot  []byte          // nil if the tree has no root yet
	dequeued map[string]bool // identity hashes handed out by DequeueLeaves (LOG trees)
	borrowed bool            // tx is the caller's (InTx): Commit and Close leave it open
	known    LeafHashes      // with borrowed, the hashes of leaves the caller stored (may be nil)
}

func (t *logTX) Commit(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.borrowed {
		t.tx = nil
		return nil
	}
	return finish(&t.tx, true)
}

func (t *logTX) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.borrowed {
		t.tx = nil
		return nil
	}
	return finish(&t.tx, false)
}

// lock locks t and checks that it is still open; the caller MUST unlock.
func (t *logTX) lock() error {
	t.mu.Lock()
	if t.tx == nil {
		t.mu.Unlock()
		return ErrTxDone
	}
	return nil
}

func (t *logTX) lockWritable() error {
	if err := t.lock(); err != nil {
		return err
	}
	if !t.tx.Writable() {
		t.mu.Unlock()
		return status.Error(codes.FailedPrecondition, "read-only transaction")
	}
	return nil
}

// GetMerkleNodes returns the stored nodes among ids, in the requested order, skipping any not
// stored (as the SQL providers do; the sequencer checks the count).
func (t *logTX) GetMerkleNodes(ctx context.Context, ids []compact.NodeID) ([]tree.Node, error) {
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	out := make([]tree.Node, 0, len(ids))
	hashes, err := readNodes(t.tb.rows, ids)
	if err != nil {
		return nil, err
	}
	for i, h := range hashes {
		if h != nil {
			out = append(out, tree.Node{ID: ids[i], Hash: h})
		}
	}
	return out, nil
}

func (t *logTX) SetMerkleNodes(ctx context.Context, nodes []tree.Node) error {
	if err := t.lockWritable(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	return setNodes(t.tb, nodes)
}

func (t *logTX) GetLeavesByRange(ctx context.Context, start, count int64) ([]*trillian.LogLeaf, error) {
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	return t.leavesByRange(start, count)
}

// leavesByRange follows the MySQL provider: a LOG tree serves only integrated leaves; a
// PREORDERED_LOG tree also serves stored leaves beyond the tree size. Below the tree size a gap
// is an error; beyond it a gap ends the result.
func (t *logTX) leavesByRange(start, count int64) ([]*trillian.LogLeaf, error) {
	if count <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "invalid count %d, want > 0", count)
	}
	if start < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "invalid start %d, want >= 0", start)
	}
	size := int64(t.root.TreeSize)
	if t.treeType == trillian.TreeType_LOG {
		if size <= 0 {
			return nil, status.Errorf(codes.OutOfRange, "empty tree")
		}
		if start >= size {
			return nil, status.Errorf(codes.OutOfRange, "invalid start %d, want < TreeSize(%d)", start, size)
		}
		count = min(count, size-start)
	}
	return contiguousLeaves(t.tb, start, count, size)
}

func (t *logTX) GetLeavesByHash(ctx context.Context, leafHashes [][]byte, orderBySequence bool) ([]*trillian.LogLeaf, error) {
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	var out []*trillian.LogLeaf
	for _, h := range leafHashes {
		c := t.tb.hash.Cursor()
		for k, _ := c.Seek(h); k != nil && len(k) == len(h)+8 && string(k[:len(h)]) == string(h); k, _ = c.Next() {
			leaf, err := getLeaf(t.tb, k[len(h):])
			if err != nil {
				return nil, err
			}
			if leaf != nil {
				out = append(out, leaf)
			}
		}
		indexes, err := findInRuns(t.tb.runs, runHash, h)
		if err != nil {
			return nil, err
		}
		for _, idx := range indexes {
			leaf, err := getLeaf(t.tb, indexKey(idx))
			if err != nil {
				return nil, err
			}
			if leaf != nil {
				out = append(out, leaf)
			}
		}
	}
	if orderBySequence {
		sort.SliceStable(out, func(i, j int) bool { return out[i].LeafIndex < out[j].LeafIndex })
	}
	return out, nil
}

func (t *logTX) LatestSignedLogRoot(ctx context.Context) (*trillian.SignedLogRoot, error) {
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	if t.rawRoot == nil {
		return nil, storage.ErrTreeNeedsInit
	}
	return &trillian.SignedLogRoot{LogRoot: append([]byte(nil), t.rawRoot...)}, nil
}

func (t *logTX) StoreSignedLogRoot(ctx context.Context, root *trillian.SignedLogRoot) error {
	if err := t.lockWritable(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	return storeRoot(t.tb, root.GetLogRoot())
}

// DequeueLeaves for a PREORDERED_LOG tree returns the stored leaves that follow the tree size,
// up to limit and without a gap. It ignores cutoff, as the SQL providers do: every node of a
// replicated log must integrate the same leaves whatever its clock says.
//
// For a LOG tree it returns queued leaves with a queue time at or before cutoff, oldest first,
// skipping those already returned in this transaction. They leave the queue when
// UpdateSequencedLeaves assigns their indexes.
func (t *logTX) DequeueLeaves(ctx context.Context, limit int, cutoff time.Time) ([]*trillian.LogLeaf, error) {
	if err := t.lockWritable(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	if limit <= 0 {
		return nil, nil
	}
	if t.treeType == trillian.TreeType_PREORDERED_LOG {
		if t.borrowed {
			// Inside a caller's transaction only Trillian's sequencer runs (InTx): it reads a
			// leaf's index and hashes, from the caller where it has them.
			start, size := int64(t.root.TreeSize), int64(t.root.TreeSize)
			var out []*trillian.LogLeaf
			for ; t.known != nil && len(out) < limit; start++ {
				merkle, identity, ok := t.known(start)
				if !ok {
					break
				}
				if out == nil {
					out = make([]*trillian.LogLeaf, 0, min(limit, 1024))
				}
				out = append(out, sequencerLeaf(start, merkle, identity))
			}
			if len(out) == limit {
				return out, nil
			}
			rest, err := contiguousHashes(t.tb, start, int64(limit-len(out)), size)
			return append(out, rest...), err
		}
		return contiguousLeaves(t.tb, int64(t.root.TreeSize), int64(limit), int64(t.root.TreeSize))
	}
	return dequeue(t.tb, limit, cutoff, t.dequeued)
}

func (t *logTX) UpdateSequencedLeaves(ctx context.Context, leaves []*trillian.LogLeaf) error {
	if err := t.lockWritable(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	return updateSequenced(t.tb, leaves)
}
