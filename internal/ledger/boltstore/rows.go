package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/google/trillian/storage/tree"
	"github.com/transparency-dev/merkle/compact"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Merkle nodes are stored in rows: the rowWidth (128) nodes of one level whose indexes differ
// only in their low 7 bits are one value, under rowKey. A row value is a presence bitmap (bit i
// of byte i/8 for slot i, the node at index%128) followed by the hashes of slots 0..n-1, 32 bytes
// each, where n-1 is the highest slot present; an absent slot below it is zeros.
//
// The sequencer writes each level's nodes in index order, so a commit rewrites the last row of
// each level it reaches (at most 4 KiB) instead of putting each node under its own key: ~2 bbolt
// puts per entry became ~1 per level and commit. A C2SP tile (level 8L, indexes 256N..256N+255)
// is two rows. Rows are no wider because bbolt puts at least two values on a page: two rows of
// 256 (8 KiB each) overflowed a 16 KiB page, and every commit wrote two pages per level.
//
// Rows sort by where their coverage ends (see rowKey), not level by level: the rows a commit
// changes are those that reach past the tree's old size, and those sort after every other row,
// so they share the last few pages of the bucket. Sorted level by level they took a page per
// level: a commit of 188 entries at 56,400 leaves wrote 613 KiB, 186 of them rows (11.6 pages of
// 16 KiB); sorted by end it writes 522 KiB, 81 of them rows.
const (
	rowWidth   = 128
	bitmapSize = rowWidth / 8
	maxLevel   = 63 // the highest Merkle level of a tree of at most 2^63 leaves
)

// rowKeySize is the length of a row key: the end of the row's coverage (16 bytes) and its level.
const rowKeySize = 17

// rowKey is the key of the row holding the node at (level, index): the number of leaves below
// the end of what the row covers, (index/rowWidth+1) * rowWidth * 2^level, as 16 bytes
// big-endian (up to 2^127 for level 63), then the level (1 byte). A row ends at or below the
// tree's size once every node in it is stored; the rows a commit changes all end above the size
// before it, so they are the last keys of the bucket.
func rowKey(level uint, index uint64) [rowKeySize]byte {
	var k [rowKeySize]byte
	end, shift := index/rowWidth+1, 7+level // end < 2^57, shift <= 70
	var hi, lo uint64
	if shift >= 64 {
		hi = end << (shift - 64)
	} else {
		hi, lo = end>>(64-shift), end<<shift
	}
	binary.BigEndian.PutUint64(k[:8], hi)
	binary.BigEndian.PutUint64(k[8:16], lo)
	k[16] = byte(level)
	return k
}

// rowOf is the inverse of rowKey: the level of a row key and the index of its first node. A key
// that rowKey does not make is an error: the file is corrupt.
func rowOf(k []byte) (level uint, first uint64, err error) {
	if len(k) != rowKeySize || k[16] > maxLevel {
		return 0, 0, fmt.Errorf("%w: row key %x", errBadKey, k)
	}
	level = uint(k[16])
	hi, lo := binary.BigEndian.Uint64(k[:8]), binary.BigEndian.Uint64(k[8:16])
	var end uint64
	if shift := 7 + level; shift >= 64 {
		end = hi >> (shift - 64)
	} else {
		end = hi<<(64-shift) | lo>>shift
	}
	if end == 0 || rowKey(level, (end-1)*rowWidth) != [rowKeySize]byte(k) {
		return 0, 0, fmt.Errorf("%w: row key %x", errBadKey, k)
	}
	return level, (end - 1) * rowWidth, nil
}

// rowNode returns the hash in slot of a stored row value, or nil if the slot is empty. A value
// of the wrong shape is an error: the file is corrupt.
func rowNode(v []byte, slot int) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	n := (len(v) - bitmapSize) / hashSize
	if len(v) < bitmapSize || (len(v)-bitmapSize)%hashSize != 0 || n > rowWidth {
		return nil, fmt.Errorf("%w: node row of %d bytes", errBadKey, len(v))
	}
	if v[slot/8]&(1<<(slot%8)) == 0 {
		return nil, nil
	}
	if slot >= n {
		return nil, fmt.Errorf("%w: node row of %d slots marks slot %d", errBadKey, n, slot)
	}
	off := bitmapSize + slot*hashSize
	return v[off : off+hashSize], nil
}

// getNode returns the stored hash of a node, or nil. The hash lives in bbolt's map.
func getNode(rows *bbolt.Bucket, id compact.NodeID) ([]byte, error) {
	if id.Level > maxLevel {
		return nil, nil
	}
	k := rowKey(id.Level, id.Index)
	return rowNode(rows.Get(k[:]), int(id.Index%rowWidth))
}

// rowEdit is a row being written: a copy of the stored value, with room for every slot.
type rowEdit struct {
	key     [rowKeySize]byte
	v       []byte
	changed bool
}

func newRowEdit(key [rowKeySize]byte, stored []byte) *rowEdit {
	v := make([]byte, bitmapSize, bitmapSize+rowWidth*hashSize)
	if stored != nil {
		v = append(v[:0], stored...)
	}
	return &rowEdit{key: key, v: v}
}

// set stores hash in an empty slot.
func (e *rowEdit) set(slot int, hash []byte) {
	if end := bitmapSize + (slot+1)*hashSize; len(e.v) < end {
		e.v = append(e.v, make([]byte, end-len(e.v))...)
	}
	copy(e.v[bitmapSize+slot*hashSize:], hash)
	e.v[slot/8] |= 1 << (slot % 8)
	e.changed = true
}

// setNodes stores Merkle nodes. A node already stored MUST have the same hash: the sequencer
// only writes perfect subtrees, which never change. Each row the nodes fall in is read and
// written once.
func setNodes(tb *treeBuckets, nodes []tree.Node) error {
	edits := map[[rowKeySize]byte]*rowEdit{}
	var order []*rowEdit
	for _, n := range nodes {
		if len(n.Hash) != hashSize {
			return status.Errorf(codes.InvalidArgument, "node %+v has a hash of %d bytes, want %d", n.ID, len(n.Hash), hashSize)
		}
		if n.ID.Level > maxLevel {
			return status.Errorf(codes.InvalidArgument, "node %+v: level above %d", n.ID, maxLevel)
		}
		k := rowKey(n.ID.Level, n.ID.Index)
		e := edits[k]
		if e == nil {
			stored := tb.rows.Get(k[:])
			if _, err := rowNode(stored, 0); err != nil {
				return err
			}
			e = newRowEdit(k, stored)
			edits[k] = e
			order = append(order, e)
		}
		slot := int(n.ID.Index % rowWidth)
		h, err := rowNode(e.v, slot)
		if err != nil {
			return err
		}
		if h != nil {
			if !bytes.Equal(h, n.Hash) {
				return fmt.Errorf("node %+v: %w", n.ID, ErrNodeMismatch)
			}
			continue
		}
		e.set(slot, n.Hash)
	}
	for _, e := range order {
		if !e.changed {
			continue
		}
		if err := tb.rows.Put(e.key[:], e.v); err != nil {
			return err
		}
	}
	return nil
}

// readNodes returns the stored hashes of ids (nil for a node not stored), copied.
func readNodes(rows *bbolt.Bucket, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := getNode(rows, id)
		if err != nil {
			return nil, err
		}
		if h != nil {
			out[i] = bytes.Clone(h)
		}
	}
	return out, nil
}

// nodeRange returns the hashes of the nodes (level, start), (level, start+1), ... up to count of
// them, stopping at the first not stored, copied.
func nodeRange(rows *bbolt.Bucket, level uint, start uint64, count int) ([][]byte, error) {
	var out [][]byte
	var v []byte
	for idx := start; len(out) < count; idx++ {
		if idx == start || idx%rowWidth == 0 {
			k := rowKey(level, idx)
			if v = rows.Get(k[:]); v == nil {
				break
			}
		}
		h, err := rowNode(v, int(idx%rowWidth))
		if err != nil || h == nil {
			return out, err
		}
		out = append(out, bytes.Clone(h))
	}
	return out, nil
}

// upgradeTree moves the nodes of a tree written with an earlier layout into rows sorted by end,
// if the tree exists and has none: from one key per node (the "node" sub-bucket) or from rows
// sorted level by level (the "rows" sub-bucket).
func upgradeTree(tx *bbolt.Tx, treeID int64) error {
	b := tx.Bucket(treeBucketName(treeID))
	if b == nil || b.Bucket(subRows) != nil {
		return nil
	}
	if err := migrateNodes(b); err != nil {
		return fmt.Errorf("tree %d: move nodes into rows: %w", treeID, err)
	}
	return nil
}

// migrateNodes creates the rows bucket of a tree written with an earlier layout and moves its
// nodes there: those of a "node" sub-bucket (level (1B) || index (8B BE) -> hash, one key per
// node) and those of a "rows" sub-bucket (level (1B) || index/128 (8B BE) -> a row as rows.go
// describes it), and deletes the old bucket. A tree that has neither gets an empty rows bucket.
func migrateNodes(treeBucket *bbolt.Bucket) error {
	rows, err := treeBucket.CreateBucketIfNotExists(subRows)
	if err != nil {
		return err
	}
	rows.FillPercent = 0.9
	if old := treeBucket.Bucket(subRowsByLevel); old != nil {
		c := old.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 9 || k[0] > maxLevel || binary.BigEndian.Uint64(k[1:]) >= 1<<57 {
				return fmt.Errorf("%w: row key %x", errBadKey, k)
			}
			if _, err := rowNode(v, 0); err != nil {
				return err
			}
			key := rowKey(uint(k[0]), binary.BigEndian.Uint64(k[1:])*rowWidth)
			if err := rows.Put(key[:], bytes.Clone(v)); err != nil {
				return err
			}
		}
		if err := treeBucket.DeleteBucket(subRowsByLevel); err != nil {
			return err
		}
	}
	old := treeBucket.Bucket(subNodeV1)
	if old == nil {
		return nil
	}
	var e *rowEdit
	flush := func() error {
		if e == nil || !e.changed {
			return nil
		}
		return rows.Put(e.key[:], e.v)
	}
	c := old.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		id, err := decodeNodeKey(k)
		if err != nil {
			return err
		}
		if len(v) != hashSize {
			return fmt.Errorf("%w: node %+v has a hash of %d bytes", errBadKey, id, len(v))
		}
		if key := rowKey(id.Level, id.Index); e == nil || key != e.key {
			if err := flush(); err != nil {
				return err
			}
			e = newRowEdit(key, rows.Get(key[:]))
		}
		e.set(int(id.Index%rowWidth), v)
	}
	if err := flush(); err != nil {
		return err
	}
	return treeBucket.DeleteBucket(subNodeV1)
}
