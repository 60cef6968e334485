package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/types"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/witnessnet/witnessnet/internal/ledger/runs"
)

// hashSize is the size of every leaf hash this provider accepts (RFC 6962, SHA-256).
const hashSize = 32

// encodeLeaf encodes a leaf as stored: the bytes proto.Marshal gives (deterministic, fields in
// number order), written without reflection since Apply stores every entry this way.
func encodeLeaf(l *trillian.LogLeaf) ([]byte, error) {
	return appendLeaf(make([]byte, 0, leafSize(l)), l), nil
}

// LogLeaf field numbers, and google.protobuf.Timestamp's.
const (
	fieldMerkleLeafHash     = 1
	fieldLeafValue          = 2
	fieldExtraData          = 3
	fieldLeafIndex          = 4
	fieldLeafIdentityHash   = 5
	fieldQueueTimestamp     = 6
	fieldIntegrateTimestamp = 7
	fieldSeconds            = 1
	fieldNanos              = 2
)

// leafSize is the length of appendLeaf's encoding of l.
func leafSize(l *trillian.LogLeaf) int {
	n := 0
	for _, b := range [][]byte{l.MerkleLeafHash, l.LeafValue, l.ExtraData, l.LeafIdentityHash} {
		if len(b) > 0 {
			n += 1 + protowire.SizeBytes(len(b))
		}
	}
	if l.LeafIndex != 0 {
		n += 1 + protowire.SizeVarint(uint64(l.LeafIndex))
	}
	for _, ts := range []*timestamppb.Timestamp{l.QueueTimestamp, l.IntegrateTimestamp} {
		if ts != nil {
			n += 1 + protowire.SizeBytes(timestampSize(ts))
		}
	}
	return n + len(l.ProtoReflect().GetUnknown())
}

func timestampSize(ts *timestamppb.Timestamp) int {
	n := 0
	if s := ts.GetSeconds(); s != 0 {
		n += 1 + protowire.SizeVarint(uint64(s))
	}
	if ns := ts.GetNanos(); ns != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(ns)))
	}
	return n + len(ts.ProtoReflect().GetUnknown())
}

// appendLeaf appends the encoding of l (see encodeLeaf) to b. Proto3 leaves out empty bytes and
// zero numbers; a timestamp that is set is written even when zero, as an empty message; unknown
// fields follow the known ones.
func appendLeaf(b []byte, l *trillian.LogLeaf) []byte {
	appendBytes := func(b []byte, num protowire.Number, v []byte) []byte {
		if len(v) == 0 {
			return b
		}
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	appendTimestamp := func(b []byte, num protowire.Number, ts *timestamppb.Timestamp) []byte {
		if ts == nil {
			return b
		}
		b = protowire.AppendVarint(protowire.AppendTag(b, num, protowire.BytesType), uint64(timestampSize(ts)))
		if s := ts.GetSeconds(); s != 0 {
			b = protowire.AppendVarint(protowire.AppendTag(b, fieldSeconds, protowire.VarintType), uint64(s))
		}
		if ns := ts.GetNanos(); ns != 0 {
			b = protowire.AppendVarint(protowire.AppendTag(b, fieldNanos, protowire.VarintType), uint64(int64(ns)))
		}
		return append(b, ts.ProtoReflect().GetUnknown()...)
	}
	b = appendBytes(b, fieldMerkleLeafHash, l.MerkleLeafHash)
	b = appendBytes(b, fieldLeafValue, l.LeafValue)
	b = appendBytes(b, fieldExtraData, l.ExtraData)
	if l.LeafIndex != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, fieldLeafIndex, protowire.VarintType), uint64(l.LeafIndex))
	}
	b = appendBytes(b, fieldLeafIdentityHash, l.LeafIdentityHash)
	b = appendTimestamp(b, fieldQueueTimestamp, l.QueueTimestamp)
	b = appendTimestamp(b, fieldIntegrateTimestamp, l.IntegrateTimestamp)
	return append(b, l.ProtoReflect().GetUnknown()...)
}

func decodeLeaf(v []byte) (*trillian.LogLeaf, error) {
	l := &trillian.LogLeaf{}
	if err := proto.Unmarshal(v, l); err != nil {
		return nil, fmt.Errorf("decode leaf: %w", err)
	}
	// Stored leaves always carry both timestamps (zero meaning unset), as the SQL providers'
	// leaves do; an empty message may be dropped by a marshaller, so restore it.
	if l.QueueTimestamp == nil {
		l.QueueTimestamp = &timestamppb.Timestamp{}
	}
	if l.IntegrateTimestamp == nil {
		l.IntegrateTimestamp = &timestamppb.Timestamp{}
	}
	return l, nil
}

// leafHashes reads a stored leaf's Merkle leaf hash and identity hash (LogLeaf fields 1 and 5)
// without decoding, and copying, the rest of it. The hashes are copied: v lives in bbolt's map.
func leafHashes(v []byte) (merkle, identity []byte, err error) {
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return nil, nil, fmt.Errorf("decode leaf: %w", protowire.ParseError(n))
		}
		v = v[n:]
		if typ == protowire.BytesType && (num == 1 || num == 5) {
			b, m := protowire.ConsumeBytes(v)
			if m < 0 {
				return nil, nil, fmt.Errorf("decode leaf: %w", protowire.ParseError(m))
			}
			if num == 1 {
				merkle = bytes.Clone(b)
			} else {
				identity = bytes.Clone(b)
			}
			v = v[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, v)
		if m < 0 {
			return nil, nil, fmt.Errorf("decode leaf: %w", protowire.ParseError(m))
		}
		v = v[m:]
	}
	if len(merkle) != hashSize || len(identity) != hashSize {
		return nil, nil, fmt.Errorf("decode leaf: hashes of %d and %d bytes", len(merkle), len(identity))
	}
	return merkle, identity, nil
}

// getLeaf returns the sequenced leaf under key k (an index key), or nil.
func getLeaf(tb *treeBuckets, k []byte) (*trillian.LogLeaf, error) { return storedLeaf(tb.leaf.Get(k)) }

// storedLeaf decodes a stored leaf; nil (no leaf stored) is no leaf and no error.
func storedLeaf(v []byte) (*trillian.LogLeaf, error) {
	if v == nil {
		return nil, nil
	}
	return decodeLeaf(v)
}

// leafByRef returns the leaf an ident ref points at, sequenced or queued.
func leafByRef(tb *treeBuckets, ref []byte) (*trillian.LogLeaf, error) {
	kind, index, qkey, err := decodeRef(ref)
	if err != nil {
		return nil, err
	}
	if kind == refSequenced {
		return getLeaf(tb, indexKey(index))
	}
	v := tb.queue.Get(qkey)
	if v == nil {
		return nil, fmt.Errorf("%w: dangling queue ref", errBadKey)
	}
	return decodeLeaf(v)
}

// contiguousLeaves returns the leaves [start, start+count) up to the first gap. A gap below size
// (the integrated tree size) means lost data and is an error.
func contiguousLeaves(tb *treeBuckets, start, count, size int64) ([]*trillian.LogLeaf, error) {
	return contiguous(tb, start, count, size, func(_ int64, v []byte) (*trillian.LogLeaf, error) { return decodeLeaf(v) })
}

// contiguousHashes is contiguousLeaves for the sequencer of a PREORDERED_LOG tree, which reads a
// leaf's index and Merkle leaf hash only: the leaves carry their index and hashes, and not their
// value, which is most of what is stored.
func contiguousHashes(tb *treeBuckets, start, count, size int64) ([]*trillian.LogLeaf, error) {
	return contiguous(tb, start, count, size, func(idx int64, v []byte) (*trillian.LogLeaf, error) {
		merkle, identity, err := leafHashes(v)
		if err != nil {
			return nil, err
		}
		return sequencerLeaf(idx, merkle, identity), nil
	})
}

// sequencerLeaf is what the sequencer of a PREORDERED_LOG tree reads of a leaf: its index and
// hashes, with both timestamps set and zero, as stored leaves have them.
func sequencerLeaf(idx int64, merkle, identity []byte) *trillian.LogLeaf {
	return &trillian.LogLeaf{LeafIndex: idx, MerkleLeafHash: merkle, LeafIdentityHash: identity,
		QueueTimestamp: &timestamppb.Timestamp{}, IntegrateTimestamp: &timestamppb.Timestamp{}}
}

func contiguous(tb *treeBuckets, start, count, size int64, decode func(idx int64, v []byte) (*trillian.LogLeaf, error)) ([]*trillian.LogLeaf, error) {
	end := int64(math.MaxInt64)
	if count < end-start {
		end = start + count
	}
	out := make([]*trillian.LogLeaf, 0, min(count, 1024))
	c := tb.leaf.Cursor()
	k, v := c.Seek(indexKey(start))
	for want := start; want < end; want++ {
		idx := int64(-1)
		if k != nil {
			var err error
			if idx, err = decodeIndexKey(k); err != nil {
				return nil, err
			}
		}
		if idx != want {
			if want < size {
				return nil, status.Errorf(codes.Internal, "leaf %d missing below tree size %d", want, size)
			}
			break
		}
		leaf, err := decode(idx, v)
		if err != nil {
			return nil, err
		}
		out = append(out, leaf)
		k, v = c.Next()
	}
	return out, nil
}

func checkHashes(leaves []*trillian.LogLeaf, needMerkle bool) error {
	for i, l := range leaves {
		if got := len(l.GetLeafIdentityHash()); got != hashSize {
			return status.Errorf(codes.FailedPrecondition, "leaves[%d] has identity hash size %d, want %d", i, got, hashSize)
		}
		if got := len(l.GetMerkleLeafHash()); needMerkle && got != hashSize {
			return status.Errorf(codes.FailedPrecondition, "leaves[%d] has Merkle leaf hash size %d, want %d", i, got, hashSize)
		}
	}
	return nil
}

func sameLeaf(a, b *trillian.LogLeaf) bool {
	return bytes.Equal(a.LeafIdentityHash, b.LeafIdentityHash) && bytes.Equal(a.MerkleLeafHash, b.MerkleLeafHash) &&
		bytes.Equal(a.LeafValue, b.LeafValue) && bytes.Equal(a.ExtraData, b.ExtraData)
}

func result(code codes.Code, msg string, leaf *trillian.LogLeaf) *trillian.QueuedLogLeaf {
	return &trillian.QueuedLogLeaf{Leaf: leaf, Status: status.New(code, msg).Proto()}
}

// addSequencedLeaves stores leaves at their indexes; with index false it writes neither their
// identity nor their Merkle hash index entries (see AddSequencedLeavesUnindexedTx).
func addSequencedLeaves(tb *treeBuckets, leaves []*trillian.LogLeaf, ts time.Time, index bool, arena *Arena) ([]*trillian.QueuedLogLeaf, error) {
	if err := checkHashes(leaves, true); err != nil {
		return nil, err
	}
	qts := timestamppb.New(ts)
	out := make([]*trillian.QueuedLogLeaf, len(leaves))
	stored := newGetter(tb.leaf)
	// Leaves past the last index stored are not looked up: a log appends them in index order.
	last, err := lastIndex(tb.leaf)
	if err != nil {
		return nil, err
	}
	ok := status.New(codes.OK, "OK").Proto() // one, shared by the results: callers only read them
	for i, leaf := range leaves {
		if leaf.LeafIndex < 0 {
			out[i] = result(codes.OutOfRange, "negative LeafIndex", leaf)
			continue
		}
		key := indexKey(leaf.LeafIndex)
		var prev *trillian.LogLeaf
		if leaf.LeafIndex <= last {
			if prev, err = storedLeaf(stored.get(key)); err != nil {
				return nil, err
			}
		}
		if prev != nil {
			if sameLeaf(prev, leaf) {
				out[i] = result(codes.AlreadyExists, "identical leaf at LeafIndex", prev)
			} else {
				out[i] = result(codes.FailedPrecondition, "conflicting LeafIndex", prev)
			}
			continue
		}
		if index {
			ref, err := identRef(tb, leaf.LeafIdentityHash)
			if err != nil {
				return nil, err
			}
			if ref != nil {
				other, err := leafByRef(tb, ref)
				if err != nil {
					return nil, err
				}
				out[i] = result(codes.FailedPrecondition, "conflicting LeafIdentityHash", other)
				continue
			}
		}
		// The leaf as stored: the caller's fields (only read, to encode them) with the timestamps.
		stored := &trillian.LogLeaf{MerkleLeafHash: leaf.MerkleLeafHash, LeafValue: leaf.LeafValue, ExtraData: leaf.ExtraData,
			LeafIndex: leaf.LeafIndex, LeafIdentityHash: leaf.LeafIdentityHash, QueueTimestamp: qts, IntegrateTimestamp: &timestamppb.Timestamp{}}
		if index {
			err = putSequenced(tb, stored)
		} else {
			err = putLeaf(tb, stored, arena)
		}
		if err != nil {
			return nil, err
		}
		last = max(last, leaf.LeafIndex)
		out[i] = &trillian.QueuedLogLeaf{Leaf: leaf, Status: ok}
	}
	return out, nil
}

// lastIndex is the largest index key in b, or -1 if b is empty.
func lastIndex(b *bbolt.Bucket) (int64, error) {
	k, _ := b.Cursor().Last()
	if k == nil {
		return -1, nil
	}
	return decodeIndexKey(k)
}

// putLeaf writes a leaf at its index, encoded in arena's memory if arena is not nil.
func putLeaf(tb *treeBuckets, leaf *trillian.LogLeaf, arena *Arena) error {
	v, err := arena.encodeLeaf(leaf)
	if err != nil {
		return err
	}
	return tb.leaf.Put(indexKey(leaf.LeafIndex), v)
}

// Arena is memory that one writer reuses for the leaves it stores, transaction after
// transaction. bbolt keeps a reference to a stored value until its transaction ends and copies it
// into the file's pages only when it commits, so every leaf needs memory of its own until then;
// taking it from an arena reuses warm memory instead of allocating ~1.5 KiB of fresh heap per
// leaf, whose page faults and clearing cost more than encoding the leaf (BENCHMARKS.md). The zero
// Arena is ready to use; a nil *Arena allocates each leaf.
type Arena struct{ buf []byte }

// maxArena is the most memory an arena keeps across Reset: a larger one, after a transaction
// that stored unusually many leaves (a replay after a restart), is left to the collector.
const maxArena = 8 << 20

// Reset makes the arena's memory reusable. The caller MUST have ended (committed or rolled back)
// every transaction that stored leaves from it.
func (a *Arena) Reset() {
	if cap(a.buf) > maxArena {
		a.buf = nil
	}
	a.buf = a.buf[:0]
}

// encodeLeaf is encodeLeaf in the arena's memory. A full arena moves on to new memory twice its
// size; what it leaves stays referenced by the values stored from it, until they are collected.
func (a *Arena) encodeLeaf(l *trillian.LogLeaf) ([]byte, error) {
	if a == nil {
		return encodeLeaf(l)
	}
	n := leafSize(l)
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(2*cap(a.buf), n, 64<<10))
	}
	start := len(a.buf)
	a.buf = appendLeaf(a.buf, l)
	return a.buf[start:len(a.buf):len(a.buf)], nil
}

// putSequenced writes a leaf at its index with its identity and Merkle hash index entries.
func putSequenced(tb *treeBuckets, leaf *trillian.LogLeaf) error {
	if err := putLeaf(tb, leaf, nil); err != nil {
		return err
	}
	if err := tb.ident.Put(leaf.LeafIdentityHash, encodeSeqRef(leaf.LeafIndex)); err != nil {
		return err
	}
	return tb.hash.Put(hashKey(leaf.MerkleLeafHash, leaf.LeafIndex), nil)
}

// Kinds of the sorted runs (package runs) in a tree's runs bucket.
const (
	runIdent = 'i' // LeafIdentityHash -> index, unique
	runHash  = 'h' // MerkleLeafHash -> index
)

// leafHashesFrom calls each with the index, Merkle leaf hash and identity hash of the leaves
// [from, to), in order.
type leafHashesFrom func(from, to int64, each func(idx int64, merkle, identity []byte) error) error

// storedHashes reads the hashes from the stored leaves, failing at a missing one.
func storedHashes(tb *treeBuckets) leafHashesFrom {
	return func(from, to int64, each func(idx int64, merkle, identity []byte) error) error {
		c := tb.leaf.Cursor()
		want := from
		for k, v := c.Seek(indexKey(from)); want < to; k, v = c.Next() {
			idx := int64(-1)
			if k != nil {
				var err error
				if idx, err = decodeIndexKey(k); err != nil {
					return err
				}
			}
			if idx != want {
				return status.Errorf(codes.Internal, "index leaves [%d, %d): leaf %d missing", from, to, want)
			}
			merkle, identity, err := leafHashes(v)
			if err != nil {
				return fmt.Errorf("leaf %d: %w", idx, err)
			}
			if err := each(idx, merkle, identity); err != nil {
				return err
			}
			want++
		}
		return nil
	}
}

// givenHashes serves the hashes of the leaves [base, base+len(identities)) from the slices.
func givenHashes(base int64, identities, merkles [][]byte) leafHashesFrom {
	return func(from, to int64, each func(idx int64, merkle, identity []byte) error) error {
		for idx := from; idx < to; idx++ {
			i := idx - base
			if len(identities[i]) != hashSize || len(merkles[i]) != hashSize {
				return status.Errorf(codes.InvalidArgument, "leaf %d: hashes of %d and %d bytes", idx, len(merkles[i]), len(identities[i]))
			}
			if err := each(idx, merkles[i], identities[i]); err != nil {
				return err
			}
		}
		return nil
	}
}

// IndexKinds selects the indexes IndexLeavesTx and IndexHashesTx write.
type IndexKinds uint8

const (
	IndexIdentities   IndexKinds = 1 << iota // LeafIdentityHash -> leaf index, unique
	IndexMerkleHashes                        // MerkleLeafHash -> leaf index
	IndexAll          = IndexIdentities | IndexMerkleHashes
)

// indexLeaves writes the index entries of kinds for the leaves [from, to) as sorted runs, their
// hashes read with hashesOf. For each kind, leaves below the end of the last range it indexed
// count as indexed.
func indexLeaves(tx *bbolt.Tx, treeID int64, tb *treeBuckets, from, to int64, hashesOf leafHashesFrom, kinds IndexKinds) error {
	if tb.runs == nil {
		b, err := tx.Bucket(treeBucketName(treeID)).CreateBucket(subRuns)
		if err != nil {
			return err
		}
		tb.runs = b
	}
	identFrom, err := indexFrom(tb.runs, runIdent, from, to, kinds&IndexIdentities != 0)
	if err != nil {
		return err
	}
	hashFrom, err := indexFrom(tb.runs, runHash, from, to, kinds&IndexMerkleHashes != 0)
	if err != nil {
		return err
	}
	from = min(identFrom, hashFrom)
	if from >= to {
		return nil
	}
	var idents, hashes runs.Records
	if identFrom < to {
		idents = make(runs.Records, 0, (to-identFrom)*(runs.HashSize+8))
	}
	if hashFrom < to {
		hashes = make(runs.Records, 0, (to-hashFrom)*(runs.HashSize+8))
	}
	legacy := newLegacy(tb.ident)
	err = hashesOf(from, to, func(idx int64, merkle, identity []byte) error {
		// A leaf stored with AddSequencedLeavesTx is in the B+tree indexes already.
		if ref := legacy.get(identity); ref != nil {
			if !bytes.Equal(ref, encodeSeqRef(idx)) {
				return status.Errorf(codes.FailedPrecondition, "leaf identity %x is indexed at another leaf", identity)
			}
			return nil
		}
		if idx >= identFrom {
			idents.Append(identity, uint64(idx))
		}
		if idx >= hashFrom {
			hashes.Append(merkle, uint64(idx))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if identFrom < to {
		// An identity already indexed at another leaf is refused, as AddSequencedLeavesTx
		// refuses it.
		older, err := runs.Open(tb.runs, runIdent)
		if err != nil {
			return err
		}
		for i := range idents.Len() {
			for j := range older {
				at := uint64(0)
				found, err := older[j].Find(idents.Hash(i), 0, func(idx uint64) bool { at = idx; return false })
				if err != nil {
					return err
				}
				if found {
					return status.Errorf(codes.FailedPrecondition, "leaf identity %x is indexed at leaf %d", idents.Hash(i), at)
				}
			}
		}
		if err := runs.Add(tb.runs, runIdent, identFrom, to, idents, true); err != nil {
			if errors.Is(err, runs.ErrDuplicate) {
				return status.Errorf(codes.FailedPrecondition, "%v", err)
			}
			return err
		}
	}
	if hashFrom < to {
		return runs.Add(tb.runs, runHash, hashFrom, to, hashes, false)
	}
	return nil
}

// indexFrom is where indexing kind resumes for the leaves [from, to): past what it already
// covers, or to if the kind is not wanted.
func indexFrom(b *bbolt.Bucket, kind byte, from, to int64, wanted bool) (int64, error) {
	if !wanted {
		return to, nil
	}
	done, err := runs.End(b, kind)
	if err != nil {
		return 0, err
	}
	return max(from, done), nil
}

// findInRuns returns the indexes of the leaves whose kind hash is h, in the tree's runs.
func findInRuns(b *bbolt.Bucket, kind byte, h []byte) ([]int64, error) {
	rs, err := runs.Open(b, kind)
	if err != nil {
		return nil, err
	}
	var out []int64
	for i := range rs {
		if _, err := rs[i].Find(h, 0, func(idx uint64) bool { out = append(out, int64(idx)); return true }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// identRef returns the ident ref of a leaf identity hash, from the ident bucket or, for a leaf
// indexed in runs, as a sequenced ref; nil if there is none.
func identRef(tb *treeBuckets, h []byte) ([]byte, error) {
	if ref := tb.ident.Get(h); ref != nil {
		return ref, nil
	}
	idx, err := findInRuns(tb.runs, runIdent, h)
	if err != nil || len(idx) == 0 {
		return nil, err
	}
	return encodeSeqRef(idx[0]), nil
}

// queueLeaves adds leaves to a LOG tree's queue; a leaf whose identity hash is already queued or
// sequenced is reported AlreadyExists with the stored leaf.
func queueLeaves(tb *treeBuckets, leaves []*trillian.LogLeaf, ts time.Time) ([]*trillian.QueuedLogLeaf, error) {
	if err := checkHashes(leaves, false); err != nil {
		return nil, err
	}
	qts := timestamppb.New(ts)
	out := make([]*trillian.QueuedLogLeaf, len(leaves))
	for i, leaf := range leaves {
		ref, err := identRef(tb, leaf.LeafIdentityHash)
		if err != nil {
			return nil, err
		}
		if ref != nil {
			prev, err := leafByRef(tb, ref)
			if err != nil {
				return nil, err
			}
			out[i] = result(codes.AlreadyExists, "leaf already exists", prev)
			continue
		}
		stored := proto.Clone(leaf).(*trillian.LogLeaf)
		stored.QueueTimestamp, stored.IntegrateTimestamp = qts, &timestamppb.Timestamp{}
		v, err := encodeLeaf(stored)
		if err != nil {
			return nil, err
		}
		qk := queueKey(ts.UnixNano(), leaf.LeafIdentityHash)
		if err := tb.queue.Put(qk, v); err != nil {
			return nil, err
		}
		if err := tb.ident.Put(leaf.LeafIdentityHash, encodeQueueRef(qk)); err != nil {
			return nil, err
		}
		out[i] = result(codes.OK, "OK", stored)
	}
	return out, nil
}

func dequeue(tb *treeBuckets, limit int, cutoff time.Time, seen map[string]bool) ([]*trillian.LogLeaf, error) {
	var out []*trillian.LogLeaf
	c := tb.queue.Cursor()
	for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
		nanos, id, err := decodeQueueKey(k)
		if err != nil {
			return nil, err
		}
		if nanos > cutoff.UnixNano() {
			break
		}
		if seen[string(id)] {
			continue
		}
		leaf, err := decodeLeaf(v)
		if err != nil {
			return nil, err
		}
		seen[string(id)] = true
		out = append(out, leaf)
	}
	return out, nil
}

// updateSequenced moves queued leaves to the indexes the sequencer assigned them.
func updateSequenced(tb *treeBuckets, leaves []*trillian.LogLeaf) error {
	for _, leaf := range leaves {
		ref, err := identRef(tb, leaf.LeafIdentityHash)
		if err != nil {
			return err
		}
		if ref == nil {
			return fmt.Errorf("leaf %x: %w", leaf.LeafIdentityHash, ErrNotSequenced)
		}
		kind, _, qkey, err := decodeRef(ref)
		if err != nil {
			return err
		}
		if kind != refQueued {
			return fmt.Errorf("leaf %x already sequenced: %w", leaf.LeafIdentityHash, ErrNotSequenced)
		}
		if leaf.LeafIndex < 0 || tb.leaf.Get(indexKey(leaf.LeafIndex)) != nil {
			return status.Errorf(codes.FailedPrecondition, "leaf index %d invalid or occupied", leaf.LeafIndex)
		}
		qkey = append([]byte(nil), qkey...)
		if err := putSequenced(tb, proto.Clone(leaf).(*trillian.LogLeaf)); err != nil {
			return err
		}
		if err := tb.queue.Delete(qkey); err != nil {
			return err
		}
	}
	return nil
}

// latestRoot returns the latest stored root and its bytes, or nils if there is none.
func latestRoot(tb *treeBuckets) (*types.LogRootV1, []byte, error) {
	v := tb.meta.Get(keyLatest)
	if v == nil {
		return nil, nil, nil
	}
	raw := append([]byte(nil), v...)
	var root types.LogRootV1
	if err := root.UnmarshalBinary(raw); err != nil {
		return nil, nil, fmt.Errorf("decode latest root: %w", err)
	}
	return &root, raw, nil
}

// storeRoot makes raw (a LogRootV1) the latest root and records it under its tree size.
func storeRoot(tb *treeBuckets, raw []byte) error {
	var root types.LogRootV1
	if err := root.UnmarshalBinary(raw); err != nil {
		return status.Errorf(codes.InvalidArgument, "decode log root: %v", err)
	}
	prev, _, err := latestRoot(tb)
	if err != nil {
		return err
	}
	if prev != nil && root.TreeSize < prev.TreeSize {
		return fmt.Errorf("size %d after %d: %w", root.TreeSize, prev.TreeSize, ErrRootRegression)
	}
	raw = append([]byte(nil), raw...)
	if err := tb.root.Put(u64(root.TreeSize), raw); err != nil {
		return err
	}
	return tb.meta.Put(keyLatest, raw)
}

func ensureTreeTx(ctx context.Context, tx *bbolt.Tx, want *trillian.Tree, now time.Time) (*trillian.Tree, error) {
	tree, err := getTree(tx, want.TreeId)
	if status.Code(err) == codes.NotFound {
		if err := storage.ValidateTreeForCreation(ctx, want); err != nil {
			return nil, err
		}
		meta := proto.Clone(want).(*trillian.Tree)
		meta.CreateTime, meta.UpdateTime = timestamppb.New(now), timestamppb.New(now)
		tree, err = createTreeTx(tx, meta)
	}
	if err != nil {
		return nil, err
	}
	if err := upgradeTree(tx, tree.TreeId); err != nil {
		return nil, err
	}
	tb, err := openTree(tx, tree.TreeId)
	if err != nil {
		return nil, err
	}
	if root, _, err := latestRoot(tb); err != nil || root != nil {
		return tree, err
	}
	raw, err := (&types.LogRootV1{RootHash: rfc6962.DefaultHasher.EmptyRoot(), TimestampNanos: uint64(now.UnixNano())}).MarshalBinary()
	if err != nil {
		return nil, err
	}
	return tree, storeRoot(tb, raw)
}
