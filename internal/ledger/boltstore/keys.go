package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"go.etcd.io/bbolt"
)

// Top-level bucket names. Every bucket this package owns starts with bucketPrefix, so a caller
// sharing the file can keep its own buckets beside them.
const bucketPrefix = "trillian/"

var (
	bucketTrees = []byte(bucketPrefix + "trees") // tree ID (8 bytes BE) -> trillian.Tree proto
)

// Sub-buckets of a tree's data bucket (see treeBucketName).
var (
	subLeaf  = []byte("leaf")      // leaf index (8B BE) -> trillian.LogLeaf proto (sequenced leaves)
	subIdent = []byte("ident")     // LeafIdentityHash -> ref (see encodeSeqRef, encodeQueueRef)
	subHash  = []byte("mhash")     // MerkleLeafHash || index (8B BE) -> empty
	subQueue = []byte("queue")     // queue time (8B BE nanos) || LeafIdentityHash -> LogLeaf proto (LOG trees)
	subRows  = []byte("rowsbyend") // end of coverage (16B BE) || level (1B) -> a row of up to 128 node hashes (see rows.go)
	subRoot  = []byte("root")      // tree size (8B BE) -> LogRootV1 bytes, the last root stored at that size
	subMeta  = []byte("meta")      // keyLatest -> LogRootV1 bytes
	subRuns  = []byte("runs")      // sorted runs of index entries written by IndexLeavesTx (see runs.go)
)

var (
	keyLatest = []byte("latest")
	subs      = [][]byte{subLeaf, subIdent, subHash, subQueue, subRows, subRoot, subMeta, subRuns}

	// subNodeV1 held one key per Merkle node (level (1B) || index (8B BE) -> hash) in files
	// written before rows, and subRowsByLevel the rows sorted level by level (level (1B) ||
	// index/128 (8B BE)) in files written before rows sorted by end; NewLogStorage moves both
	// into rows.
	subNodeV1      = []byte("node")
	subRowsByLevel = []byte("rows")
)

const signBit = 1 << 63

// Ident refs say where a leaf with a given identity hash lives.
const (
	refSequenced = 'S' // followed by the leaf index (8B BE)
	refQueued    = 'Q' // followed by the queue key
)

// errBadKey reports stored bytes that do not parse: the file is corrupt or not ours.
var errBadKey = errors.New("malformed stored key")

// treeBucketName is the top-level bucket holding one tree's data. Sixteen hex digits keep names
// fixed-width so the buckets sort by tree ID.
func treeBucketName(treeID int64) []byte {
	return fmt.Appendf(nil, "%stree/%016x", bucketPrefix, uint64(treeID))
}

func u64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v)
}

func treeKey(treeID int64) []byte { return u64(uint64(treeID)) }

func indexKey(index int64) []byte { return u64(uint64(index)) }

func decodeIndexKey(k []byte) (int64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("%w: index key of %d bytes", errBadKey, len(k))
	}
	v := binary.BigEndian.Uint64(k)
	if v > 1<<63-1 {
		return 0, fmt.Errorf("%w: index %d overflows int64", errBadKey, v)
	}
	return int64(v), nil
}

// nodeKey is a node's key in subNodeV1.
func nodeKey(id compact.NodeID) []byte {
	k := make([]byte, 9)
	k[0] = byte(id.Level)
	binary.BigEndian.PutUint64(k[1:], id.Index)
	return k
}

func decodeNodeKey(k []byte) (compact.NodeID, error) {
	if len(k) != 9 || k[0] > 63 {
		return compact.NodeID{}, fmt.Errorf("%w: node key %x", errBadKey, k)
	}
	return compact.NewNodeID(uint(k[0]), binary.BigEndian.Uint64(k[1:])), nil
}

func hashKey(merkleHash []byte, index int64) []byte {
	k := make([]byte, 0, len(merkleHash)+8)
	k = append(k, merkleHash...)
	return binary.BigEndian.AppendUint64(k, uint64(index))
}

// queueKey flips the sign bit of the time so that keys sort in time order across the epoch.
func queueKey(nanos int64, identity []byte) []byte {
	k := make([]byte, 0, 8+len(identity))
	k = binary.BigEndian.AppendUint64(k, uint64(nanos)^signBit)
	return append(k, identity...)
}

func decodeQueueKey(k []byte) (nanos int64, identity []byte, err error) {
	if len(k) < 8 {
		return 0, nil, fmt.Errorf("%w: queue key of %d bytes", errBadKey, len(k))
	}
	return int64(binary.BigEndian.Uint64(k) ^ signBit), k[8:], nil
}

func encodeSeqRef(index int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{refSequenced}, uint64(index))
}

func encodeQueueRef(qkey []byte) []byte {
	return append([]byte{refQueued}, qkey...)
}

// decodeRef returns the kind of ref and, for a sequenced leaf its index, for a queued one its
// queue key.
func decodeRef(v []byte) (kind byte, index int64, qkey []byte, err error) {
	if len(v) == 0 {
		return 0, 0, nil, fmt.Errorf("%w: empty ref", errBadKey)
	}
	switch v[0] {
	case refSequenced:
		index, err = decodeIndexKey(v[1:])
		return refSequenced, index, nil, err
	case refQueued:
		if _, _, err := decodeQueueKey(v[1:]); err != nil {
			return 0, 0, nil, err
		}
		return refQueued, 0, v[1:], nil
	}
	return 0, 0, nil, fmt.Errorf("%w: ref kind %q", errBadKey, v[0])
}

// treeBuckets are the sub-buckets of one tree, valid for the life of one bbolt transaction.
type treeBuckets struct {
	leaf, ident, hash, queue, rows, root, meta *bbolt.Bucket
	runs                                       *bbolt.Bucket // nil in a file written before runs existed
}

// openTree returns the tree's buckets, or ErrTreeNotFound. It never creates anything.
func openTree(tx *bbolt.Tx, treeID int64) (*treeBuckets, error) {
	b := tx.Bucket(treeBucketName(treeID))
	if b == nil {
		return nil, fmt.Errorf("tree %d: %w", treeID, ErrTreeNotFound)
	}
	tb := &treeBuckets{
		leaf: b.Bucket(subLeaf), ident: b.Bucket(subIdent), hash: b.Bucket(subHash),
		queue: b.Bucket(subQueue), rows: b.Bucket(subRows), root: b.Bucket(subRoot), meta: b.Bucket(subMeta),
		runs: b.Bucket(subRuns),
	}
	for _, s := range []*bbolt.Bucket{tb.leaf, tb.ident, tb.hash, tb.queue, tb.rows, tb.root, tb.meta} {
		if s == nil {
			return nil, fmt.Errorf("tree %d: %w: missing sub-bucket", treeID, errBadKey)
		}
	}
	if tx.Writable() {
		// Leaves, rows of nodes and roots are appended in key order (per level for rows): full
		// pages waste less space and splits stay cheap. A leaf is never rewritten, so its pages
		// are filled to the end (a tenth less file and fewer page writes per entry than at 0.9,
		// for ~1.5 KiB leaves in 16 KiB pages); the last row of a level grows in place as nodes
		// are added, so row pages keep room for that.
		tb.leaf.FillPercent, tb.rows.FillPercent, tb.root.FillPercent = 1.0, 0.9, 0.9
	}
	return tb, nil
}

// createTreeBuckets makes a tree's data bucket and its sub-buckets.
func createTreeBuckets(tx *bbolt.Tx, treeID int64) error {
	b, err := tx.CreateBucketIfNotExists(treeBucketName(treeID))
	if err != nil {
		return err
	}
	for _, s := range subs {
		if _, err := b.CreateBucketIfNotExists(s); err != nil {
			return err
		}
	}
	return nil
}

// getter reads keys of one bucket through one cursor. bucket.Get makes a cursor per call, whose
// stack grows as it descends, a few allocations per key; a getter's cursor keeps its stack. A
// getter may be used across writes to its bucket: every get seeks from the root.
type getter struct{ c *bbolt.Cursor }

func newGetter(b *bbolt.Bucket) getter { return getter{b.Cursor()} }

// get is bucket.Get: the value of key, nil if there is none (buckets hold no nested buckets
// here).
func (g getter) get(key []byte) []byte {
	if g.c == nil {
		return nil
	}
	k, v := g.c.Seek(key)
	if k == nil || !bytes.Equal(k, key) {
		return nil
	}
	return v
}

// newLegacy is a getter over a tree's ident B+tree, which answers nil without searching when the
// bucket is empty: AddSequencedLeavesTx and QueueLeaves write it, and a tree that only takes
// AddSequencedLeavesUnindexedTx (the ledger's, since its indexes are runs) leaves it empty.
func newLegacy(b *bbolt.Bucket) getter {
	c := b.Cursor()
	if k, _ := c.First(); k == nil {
		return getter{}
	}
	return getter{c}
}
