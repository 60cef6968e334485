package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
)

// TileHeight is the C2SP tlog-tiles tile height: a tile holds 2^8 hashes.
const TileHeight = 8

// TileWidth is the number of hashes (or entries) in a full tile.
const TileWidth = 1 << TileHeight

var rangeFactory = compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

type rootInfo struct {
	Size uint64
	Hash []byte
}

func (st *store) rootInfo(ctx context.Context) (rootInfo, error) {
	r, err := st.latestRoot(ctx)
	if err != nil {
		return rootInfo{}, err
	}
	return rootInfo{Size: r.TreeSize, Hash: r.RootHash}, nil
}

// Root returns the size and root hash of the tree the node has computed.
func (l *Ledger) Root(ctx context.Context) (uint64, []byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r, err := l.st.rootInfo(ctx)
	return r.Size, r.Hash, err
}

// RootAt recomputes the root hash of the tree at an earlier size from the stored perfect subtrees.
func (l *Ledger) RootAt(ctx context.Context, size uint64) ([]byte, error) {
	if size > l.integrated.Load() {
		return nil, fmt.Errorf("%w: tree size %d is beyond the integrated size %d", ErrNotFound, size, l.integrated.Load())
	}
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := l.nodes(ctx, ids)
	if err != nil {
		return nil, err
	}
	r, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// nodes reads Merkle nodes, failing if any is missing.
func (l *Ledger) nodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	hashes, err := l.st.logs.ReadNodes(ctx, l.st.tree.TreeId, ids)
	if err != nil {
		return nil, err
	}
	for i, h := range hashes {
		if h == nil {
			return nil, fmt.Errorf("%w: tree node %v is missing", ErrTreeMismatch, ids[i])
		}
	}
	return hashes, nil
}

// Leaves returns the leaves [start, start+count) that have been committed, integrated or not.
func (l *Ledger) Leaves(ctx context.Context, start, count uint64) ([]*trillian.LogLeaf, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []*trillian.LogLeaf
	for count > 0 {
		tx, err := l.st.logs.SnapshotForTree(ctx, l.st.tree)
		if err != nil {
			return nil, err
		}
		leaves, err := tx.GetLeavesByRange(ctx, int64(start), int64(count))
		tx.Close()
		if err != nil {
			return nil, err
		}
		if len(leaves) == 0 {
			break
		}
		// Storage can rot: a leaf whose bytes no longer hash to its recorded Merkle leaf hash is
		// refused, never served.
		for _, lf := range leaves {
			if !bytes.Equal(rfc6962.DefaultHasher.HashLeaf(lf.LeafValue), lf.MerkleLeafHash) {
				l.log.Error("ALARM: stored leaf does not match its Merkle leaf hash; refusing to serve it", "index", lf.LeafIndex)
				return nil, fmt.Errorf("%w: leaf %d does not match its hash", ErrTreeMismatch, lf.LeafIndex)
			}
		}
		out = append(out, leaves...)
		start += uint64(len(leaves))
		count -= uint64(len(leaves))
	}
	return out, nil
}

// Entry is one stored entry.
type Entry struct {
	Index      uint64
	Leaf       []byte   // Merkle leaf data
	Envelope   []byte   // the envelope as sent, whether the leaf carries it or commits to it
	Layout     string   // from the leaf: the layout a link belongs to
	PublicKeys []string // from the leaf: the keys sent with the entry
}

// Entry returns the entry at index.
func (l *Ledger) Entry(ctx context.Context, index uint64) (*Entry, error) {
	if index >= l.next.Load() {
		return nil, fmt.Errorf("%w: index %d (size %d)", ErrNotFound, index, l.next.Load())
	}
	leaves, err := l.Leaves(ctx, index, 1)
	if err != nil {
		return nil, err
	}
	if len(leaves) != 1 || uint64(leaves[0].LeafIndex) != index {
		return nil, fmt.Errorf("%w: index %d", ErrNotFound, index)
	}
	e := &Entry{Index: index, Leaf: leaves[0].LeafValue}
	leaf, err := ParseLeaf(e.Leaf)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", index, err)
	}
	e.Envelope, e.Layout, e.PublicKeys = leaf.Envelope, leaf.Layout, leaf.PublicKeys
	if e.Envelope == nil {
		err = l.view(func(tx *bbolt.Tx) error {
			e.Envelope = append([]byte(nil), tx.Bucket(bucketBlobs).Get(u64(index))...)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if IdentityOf(e.Envelope).String() != "sha256:"+leaf.EnvelopeSHA256 {
			return nil, fmt.Errorf("%w: stored envelope of entry %d does not match its leaf", ErrTreeMismatch, index)
		}
	}
	return e, nil
}

// InclusionProof returns the proof that the leaf at index is in the tree of the given size.
func (l *Ledger) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if index >= size || size > l.integrated.Load() {
		return nil, fmt.Errorf("%w: inclusion of %d in tree of size %d (integrated %d)", ErrNotFound, index, size, l.integrated.Load())
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	resp, err := l.st.srv.GetInclusionProof(ctx, &trillian.GetInclusionProofRequest{
		LogId: l.st.tree.TreeId, LeafIndex: int64(index), TreeSize: int64(size),
	})
	if err != nil {
		return nil, err
	}
	if resp.Proof == nil {
		return nil, fmt.Errorf("%w: tree size %d", ErrNotFound, size)
	}
	return resp.Proof.Hashes, nil
}

// ConsistencyProof returns the proof that the tree of size old is a prefix of the tree of size.
func (l *Ledger) ConsistencyProof(ctx context.Context, old, size uint64) ([][]byte, error) {
	if old > size || size > l.integrated.Load() {
		return nil, fmt.Errorf("%w: consistency %d..%d (integrated %d)", ErrNotFound, old, size, l.integrated.Load())
	}
	if old == 0 || old == size {
		return [][]byte{}, nil
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	resp, err := l.st.srv.GetConsistencyProof(ctx, &trillian.GetConsistencyProofRequest{
		LogId: l.st.tree.TreeId, FirstTreeSize: int64(old), SecondTreeSize: int64(size),
	})
	if err != nil {
		return nil, err
	}
	if resp.Proof == nil {
		return nil, fmt.Errorf("%w: tree size %d", ErrNotFound, size)
	}
	return resp.Proof.Hashes, nil
}

// HashTile returns the C2SP tlog-tiles hash tile at level and index, width hashes wide, from the
// node's own tree. Width must not exceed what the integrated tree holds.
func (l *Ledger) HashTile(ctx context.Context, level, index, width uint64) ([]byte, error) {
	if width == 0 || width > TileWidth || level > 7 {
		return nil, fmt.Errorf("%w: tile width %d level %d", ErrNotFound, width, level)
	}
	avail := l.integrated.Load() >> (TileHeight * level) // nodes present at that Merkle level
	if index*TileWidth+width > avail {
		return nil, fmt.Errorf("%w: tile %d/%d width %d", ErrNotFound, level, index, width)
	}
	l.mu.RLock()
	hashes, err := l.st.logs.ReadNodeRange(ctx, l.st.tree.TreeId, uint(level*TileHeight), index*TileWidth, int(width))
	l.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if uint64(len(hashes)) != width {
		return nil, fmt.Errorf("%w: tile %d/%d has %d of %d hashes", ErrTreeMismatch, level, index, len(hashes), width)
	}
	out := make([]byte, 0, len(hashes)*32)
	for _, h := range hashes {
		out = append(out, h...)
	}
	return out, nil
}

// EntryBundle returns the C2SP tlog-tiles entry bundle with index, width entries wide: each leaf
// prefixed by its two-byte big-endian length.
func (l *Ledger) EntryBundle(ctx context.Context, index, width uint64) ([]byte, error) {
	if width == 0 || width > TileWidth || index*TileWidth+width > l.integrated.Load() {
		return nil, fmt.Errorf("%w: entry bundle %d width %d", ErrNotFound, index, width)
	}
	leaves, err := l.Leaves(ctx, index*TileWidth, width)
	if err != nil {
		return nil, err
	}
	if uint64(len(leaves)) != width {
		return nil, fmt.Errorf("%w: entry bundle %d has %d of %d leaves", ErrTreeMismatch, index, len(leaves), width)
	}
	// The leaves must also be the ones the node's tree holds at these indexes.
	l.mu.RLock()
	hashes, err := l.st.logs.ReadNodeRange(ctx, l.st.tree.TreeId, 0, index*TileWidth, int(width))
	l.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var out []byte
	for i, lf := range leaves {
		if i >= len(hashes) || !bytes.Equal(hashes[i], lf.MerkleLeafHash) {
			l.log.Error("ALARM: stored leaf does not match the node's tree; refusing to serve it", "index", lf.LeafIndex)
			return nil, fmt.Errorf("%w: leaf %d is not the tree's", ErrTreeMismatch, lf.LeafIndex)
		}
		if len(lf.LeafValue) > MaxBundleEntry {
			return nil, fmt.Errorf("leaf %d is %d bytes", lf.LeafIndex, len(lf.LeafValue))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(lf.LeafValue)))
		out = append(out, lf.LeafValue...)
	}
	return out, nil
}

// VerifyTree recomputes the root of the stored tree from its leaves and compares it with the
// stored root. A node runs it after restoring a snapshot: it trusts no other node's hashes.
func (l *Ledger) VerifyTree(ctx context.Context) error {
	size, want, err := l.Root(ctx)
	if err != nil {
		return err
	}
	r := rangeFactory.NewEmptyRange(0)
	for start := uint64(0); start < size; {
		leaves, err := l.Leaves(ctx, start, min(size-start, 4096))
		if err != nil {
			return err
		}
		if len(leaves) == 0 {
			return fmt.Errorf("%w: leaves end at %d, tree size %d", ErrTreeMismatch, start, size)
		}
		for _, lf := range leaves {
			if err := r.Append(rfc6962.DefaultHasher.HashLeaf(lf.LeafValue), nil); err != nil {
				return err
			}
		}
		start += uint64(len(leaves))
	}
	got, err := r.GetRootHash(nil)
	if err != nil {
		return err
	}
	if size == 0 {
		got = rfc6962.DefaultHasher.EmptyRoot()
	}
	if string(got) != string(want) {
		return fmt.Errorf("%w: stored root %x, recomputed %x at size %d", ErrTreeMismatch, want, got, size)
	}
	return nil
}
