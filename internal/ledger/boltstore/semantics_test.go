package boltstore

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/trillian"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/storage/tree"
	"github.com/google/trillian/types"
	"github.com/google/trillian/util/clock"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func newTestTree(t *testing.T) (*LogStorage, *AdminStorage) {
	t.Helper()
	db := openDB(t)
	if _, err := EnsureTree(context.Background(), db, testTree, epoch); err != nil {
		t.Fatalf("EnsureTree: %v", err)
	}
	return newStorage(t, db)
}

// TestAddSequencedLeavesStatus checks the per-leaf statuses, before and after integration.
func TestAddSequencedLeavesStatus(t *testing.T) {
	for _, integrated := range []bool{false, true} {
		name := map[bool]string{false: "stored", true: "integrated"}[integrated]
		t.Run(name, func(t *testing.T) {
			ls, _ := newTestTree(t)
			base := makeLeaves(0, 4, 16)
			res, err := ls.AddSequencedLeaves(context.Background(), testTree, base, epoch)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if c := status.FromProto(r.Status).Code(); c != codes.OK {
					t.Fatalf("leaf %d: %v, want OK", i, c)
				}
			}
			if integrated {
				if n := integrate(t, ls, clock.NewFake(epoch)); n != 4 {
					t.Fatalf("integrated %d, want 4", n)
				}
			}
			other := makeLeaves(10, 1, 16)[0] // a different leaf
			elsewhere := proto.Clone(base[1]).(*trillian.LogLeaf)
			elsewhere.LeafIndex = 20
			extra := proto.Clone(base[3]).(*trillian.LogLeaf)
			extra.ExtraData = []byte("changed")
			negative := proto.Clone(other).(*trillian.LogLeaf)
			negative.LeafIndex = -1
			other.LeafIndex = 2
			tests := []struct {
				desc     string
				leaf     *trillian.LogLeaf
				want     codes.Code
				wantLeaf *trillian.LogLeaf // the stored leaf reported back
			}{
				{"identical", base[0], codes.AlreadyExists, base[0]},
				{"different leaf at occupied index", other, codes.FailedPrecondition, base[2]},
				{"same identity at another index", elsewhere, codes.FailedPrecondition, base[1]},
				{"different extra data", extra, codes.FailedPrecondition, base[3]},
				{"negative index", negative, codes.OutOfRange, negative},
			}
			for _, tc := range tests {
				res, err := ls.AddSequencedLeaves(context.Background(), testTree, []*trillian.LogLeaf{tc.leaf}, epoch)
				if err != nil {
					t.Fatalf("%s: %v", tc.desc, err)
				}
				if got := status.FromProto(res[0].Status).Code(); got != tc.want {
					t.Errorf("%s: status %v, want %v", tc.desc, got, tc.want)
				}
				if !sameLeaf(res[0].Leaf, tc.wantLeaf) {
					t.Errorf("%s: reported leaf %x, want %x", tc.desc, res[0].Leaf.LeafIdentityHash, tc.wantLeaf.LeafIdentityHash)
				}
			}
			got, err := ls.ReadLeaves(context.Background(), testTreeID, 0, 100)
			if err != nil || len(got) != 4 {
				t.Fatalf("ReadLeaves = %d, %v; want the 4 original leaves", len(got), err)
			}
			for i := range got {
				if !sameLeaf(got[i], base[i]) {
					t.Errorf("leaf %d was changed", i)
				}
			}
		})
	}
}

func TestAddSequencedLeavesBadHash(t *testing.T) {
	ls, _ := newTestTree(t)
	leaf := makeLeaves(0, 1, 8)[0]
	leaf.MerkleLeafHash = leaf.MerkleLeafHash[:20]
	if _, err := ls.AddSequencedLeaves(context.Background(), testTree, []*trillian.LogLeaf{leaf}, epoch); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("short hash: err = %v, want FailedPrecondition", err)
	}
}

// TestImmutability checks that stored nodes cannot change and roots cannot shrink.
func TestImmutability(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	id := compact.NewNodeID(0, 0)
	h1, h2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	root := func(size uint64) []byte {
		b, _ := (&types.LogRootV1{TreeSize: size, RootHash: h1}).MarshalBinary()
		return b
	}
	steps := []struct {
		desc string
		f    func(tx storage.LogTreeTX) error
		want error
	}{
		{"first write", func(tx storage.LogTreeTX) error { return tx.SetMerkleNodes(ctx, []tree.Node{{ID: id, Hash: h1}}) }, nil},
		{"same hash again", func(tx storage.LogTreeTX) error { return tx.SetMerkleNodes(ctx, []tree.Node{{ID: id, Hash: h1}}) }, nil},
		{"different hash", func(tx storage.LogTreeTX) error { return tx.SetMerkleNodes(ctx, []tree.Node{{ID: id, Hash: h2}}) }, ErrNodeMismatch},
		{"root 5", func(tx storage.LogTreeTX) error {
			return tx.StoreSignedLogRoot(ctx, &trillian.SignedLogRoot{LogRoot: root(5)})
		}, nil},
		{"root 5 again", func(tx storage.LogTreeTX) error {
			return tx.StoreSignedLogRoot(ctx, &trillian.SignedLogRoot{LogRoot: root(5)})
		}, nil},
		{"root 4", func(tx storage.LogTreeTX) error {
			return tx.StoreSignedLogRoot(ctx, &trillian.SignedLogRoot{LogRoot: root(4)})
		}, ErrRootRegression},
	}
	for _, s := range steps {
		err := ls.ReadWriteTransaction(ctx, testTree, func(ctx context.Context, tx storage.LogTreeTX) error { return s.f(tx) })
		if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", s.desc, err, s.want)
		}
	}
	got, err := ls.ReadNodes(ctx, testTreeID, []compact.NodeID{id})
	if err != nil || !bytes.Equal(got[0], h1) {
		t.Fatalf("node = %x, %v; want %x", got[0], err, h1)
	}
}

// TestTxLifecycle checks Commit/Close semantics: reads work before Commit, nothing works after,
// and repeated Close is harmless.
func TestTxLifecycle(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	tx, err := ls.SnapshotForTree(ctx, testTree)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.LatestSignedLogRoot(ctx); err != nil {
		t.Fatalf("LatestSignedLogRoot before Commit: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if _, err := tx.GetMerkleNodes(ctx, nil); !errors.Is(err, ErrTxDone) {
		t.Fatalf("read after Commit: err = %v, want ErrTxDone", err)
	}
	for range 2 {
		if err := tx.Close(); err != nil {
			t.Fatalf("Close after Commit: %v", err)
		}
	}
	// A write in a snapshot is refused.
	rtx, _ := ls.SnapshotForTree(ctx, testTree)
	defer rtx.Close()
	if _, err := rtx.(storage.LogTreeTX).DequeueLeaves(ctx, 1, epoch); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("DequeueLeaves in snapshot: err = %v, want FailedPrecondition", err)
	}
}

// TestGetLeavesByHash checks lookup by Merkle leaf hash on a PREORDERED tree.
func TestGetLeavesByHash(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	leaves := makeLeaves(0, 5, 8)
	if _, err := ls.AddSequencedLeaves(ctx, testTree, leaves, epoch); err != nil {
		t.Fatal(err)
	}
	tx, err := ls.SnapshotForTree(ctx, testTree)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	got, err := tx.GetLeavesByHash(ctx, [][]byte{leaves[3].MerkleLeafHash, leaves[1].MerkleLeafHash, make([]byte, 32)}, true)
	if err != nil || len(got) != 2 || got[0].LeafIndex != 1 || got[1].LeafIndex != 3 {
		t.Fatalf("GetLeavesByHash = %v, %v; want leaves 1 and 3", got, err)
	}
}

// Leaves stored unindexed are found by hash and identity only once IndexLeavesTx covered them;
// indexing twice is harmless, and a gap or an identity already indexed elsewhere is an error.
func TestIndexLeavesLater(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	id := testTree.TreeId
	leaves := makeLeaves(0, 6, 8)
	err := ls.db.Update(func(tx *bbolt.Tx) error {
		res, err := AddSequencedLeavesUnindexedTx(tx, id, leaves[:5], epoch, nil)
		for i, r := range res {
			if c := status.FromProto(r.Status).Code(); c != codes.OK {
				t.Errorf("leaf %d: %v", i, c)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	byHash := func() int {
		tx, err := ls.SnapshotForTree(ctx, testTree)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		got, err := tx.GetLeavesByHash(ctx, [][]byte{leaves[1].MerkleLeafHash, leaves[3].MerkleLeafHash}, true)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	idents := func() []int64 {
		var out []int64
		ls.db.View(func(tx *bbolt.Tx) error {
			var err error
			out, err = SequencedIndexesTx(tx, id, [][]byte{leaves[1].LeafIdentityHash, leaves[3].LeafIdentityHash})
			return err
		})
		return out
	}
	if n, ix := byHash(), idents(); n != 0 || ix[0] != -1 || ix[1] != -1 {
		t.Fatalf("before indexing: %d by hash, identities at %v", n, ix)
	}
	index := func(from, to int64) error {
		return ls.db.Update(func(tx *bbolt.Tx) error { return IndexLeavesTx(tx, id, from, to, IndexAll) })
	}
	if err := index(0, 2); err != nil {
		t.Fatal(err)
	}
	if n, ix := byHash(), idents(); n != 1 || ix[0] != 1 || ix[1] != -1 {
		t.Fatalf("after indexing [0, 2): %d by hash, identities at %v", n, ix)
	}
	for _, r := range [][2]int64{{1, 5}, {0, 5}} {
		if err := index(r[0], r[1]); err != nil {
			t.Fatalf("index %v: %v", r, err)
		}
	}
	if n, ix := byHash(), idents(); n != 2 || ix[0] != 1 || ix[1] != 3 {
		t.Fatalf("after indexing all: %d by hash, identities at %v", n, ix)
	}
	if err := index(4, 6); err == nil {
		t.Fatal("indexing a leaf that is not stored succeeded")
	}
	// A leaf with the identity of leaf 2, stored at 5: indexing it is refused.
	twin := proto.Clone(leaves[5]).(*trillian.LogLeaf)
	twin.LeafIdentityHash = leaves[2].LeafIdentityHash
	if err := ls.db.Update(func(tx *bbolt.Tx) error {
		_, err := AddSequencedLeavesUnindexedTx(tx, id, []*trillian.LogLeaf{twin}, epoch, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := index(5, 6); err == nil {
		t.Fatal("an identity indexed at another leaf was indexed again")
	}
}

// leafHashes reads the same two hashes a full decoding of the stored leaf gives, and refuses a
// truncated leaf.
func TestLeafHashes(t *testing.T) {
	for _, leaf := range makeLeaves(0, 3, 700) {
		leaf.ExtraData = []byte("extra")
		v, err := encodeLeaf(leaf)
		if err != nil {
			t.Fatal(err)
		}
		m, id, err := leafHashes(v)
		if err != nil || !bytes.Equal(m, leaf.MerkleLeafHash) || !bytes.Equal(id, leaf.LeafIdentityHash) {
			t.Fatalf("leaf %d: %x %x %v", leaf.LeafIndex, m, id, err)
		}
		if _, _, err := leafHashes(v[:len(v)-3]); err == nil {
			t.Fatalf("leaf %d: a truncated leaf parsed", leaf.LeafIndex)
		}
	}
}

// TestInTx runs Trillian's sequencer inside a transaction the caller holds: its writes commit and
// roll back with the caller's, and it dequeues leaves without their values.
func TestInTx(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	tlog.InitMetrics(nil)
	leaves := makeLeaves(0, 6, 300)
	if _, err := ls.AddSequencedLeaves(ctx, testTree, leaves, epoch); err != nil {
		t.Fatal(err)
	}
	ts := clock.NewFake(epoch.Add(time.Second))
	rollBack := errors.New("roll back")
	err := ls.db.Update(func(tx *bbolt.Tx) error {
		n, err := tlog.IntegrateBatch(ctx, testTree, 4, 0, 0, ts, StorageInTx(tx), quota.Noop())
		if err != nil || n != 4 {
			t.Fatalf("IntegrateBatch = %d, %v; want 4", n, err)
		}
		if r, err := LatestRootTx(tx, testTree.TreeId); err != nil || r.TreeSize != 4 {
			t.Fatalf("root inside the transaction: %+v, %v; want size 4", r, err)
		}
		return rollBack
	})
	if !errors.Is(err, rollBack) {
		t.Fatal(err)
	}
	if r, err := ls.LatestRoot(testTree.TreeId); err != nil || r.TreeSize != 0 {
		t.Fatalf("root after roll-back: %+v, %v; want size 0", r, err)
	}

	err = ls.db.Update(func(tx *bbolt.Tx) error {
		return StorageInTx(tx).ReadWriteTransaction(ctx, testTree, func(ctx context.Context, ltx storage.LogTreeTX) error {
			got, err := ltx.DequeueLeaves(ctx, 10, epoch)
			if err != nil {
				return err
			}
			if len(got) != len(leaves) {
				t.Fatalf("dequeued %d leaves, want %d", len(got), len(leaves))
			}
			for i, l := range got {
				w := leaves[i]
				if l.LeafIndex != w.LeafIndex || !bytes.Equal(l.MerkleLeafHash, w.MerkleLeafHash) || !bytes.Equal(l.LeafIdentityHash, w.LeafIdentityHash) || l.LeafValue != nil {
					t.Fatalf("leaf %d: got index %d, value of %d bytes", i, l.LeafIndex, len(l.LeafValue))
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}

	err = ls.db.Update(func(tx *bbolt.Tx) error {
		n, err := tlog.IntegrateBatch(ctx, testTree, 10, 0, 0, ts, StorageInTx(tx), quota.Noop())
		if err != nil || n != 6 {
			t.Fatalf("IntegrateBatch = %d, %v; want 6", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ls.LatestRoot(testTree.TreeId)
	if err != nil {
		t.Fatal(err)
	}
	cr := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for _, l := range leaves {
		cr.Append(l.MerkleLeafHash, nil)
	}
	want, _ := cr.GetRootHash(nil)
	if r.TreeSize != 6 || !bytes.Equal(r.RootHash, want) {
		t.Fatalf("root after commit: size %d hash %x; want 6, %x", r.TreeSize, r.RootHash, want)
	}

	in := StorageInTx(nil)
	if err := in.CheckDatabaseAccessible(ctx); !errors.Is(err, ErrInTx) {
		t.Fatalf("CheckDatabaseAccessible: %v", err)
	}
	if _, err := in.SnapshotForTree(ctx, testTree); !errors.Is(err, ErrInTx) {
		t.Fatalf("SnapshotForTree: %v", err)
	}
	if _, err := in.AddSequencedLeaves(ctx, testTree, leaves, epoch); !errors.Is(err, ErrInTx) {
		t.Fatalf("AddSequencedLeaves: %v", err)
	}
	ls.db.View(func(tx *bbolt.Tx) error {
		err := StorageInTx(tx).ReadWriteTransaction(ctx, testTree, func(context.Context, storage.LogTreeTX) error { return nil })
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("in a read-only transaction: %v, want FailedPrecondition", err)
		}
		return nil
	})
}

// A leaf repeated in one call finds the copy the call stored before it, at every position of the
// leaf table the call has grown, whether or not the leaves are indexed.
func TestRepeatedWithinOneCall(t *testing.T) {
	for _, index := range []bool{false, true} {
		ls, _ := newTestTree(t)
		leaves := makeLeaves(0, 300, 40)
		in := append(append(leaves[:0:0], leaves...), leaves[3], leaves[150], leaves[299])
		var res []*trillian.QueuedLogLeaf
		err := ls.db.Update(func(tx *bbolt.Tx) error {
			var err error
			if index {
				res, err = AddSequencedLeavesTx(tx, testTree.TreeId, in, epoch)
			} else {
				res, err = AddSequencedLeavesUnindexedTx(tx, testTree.TreeId, in, epoch, nil)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			want := codes.OK
			if i >= len(leaves) {
				want = codes.AlreadyExists
			}
			if c := status.FromProto(r.Status).Code(); c != want {
				t.Fatalf("indexed %v: leaf %d of the call: %v, want %v", index, i, c, want)
			}
		}
	}
}

// encodeLeaf writes the bytes deterministic proto.Marshal writes, for every shape of leaf.
func TestEncodeLeafIsProtoMarshal(t *testing.T) {
	withUnknown := &trillian.LogLeaf{LeafValue: []byte("v")}
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7))
	leaves := []*trillian.LogLeaf{
		{},
		{LeafIndex: 1},
		{LeafIndex: -1, ExtraData: []byte{}},
		{LeafIndex: math.MaxInt64, MerkleLeafHash: make([]byte, 32), LeafIdentityHash: bytes.Repeat([]byte{1}, 32)},
		{LeafValue: bytes.Repeat([]byte("x"), 300), ExtraData: []byte("e"), QueueTimestamp: &timestamppb.Timestamp{}},
		{QueueTimestamp: timestamppb.New(time.Unix(-5, 999)), IntegrateTimestamp: timestamppb.New(time.Unix(1700000000, 1))},
		{IntegrateTimestamp: &timestamppb.Timestamp{Nanos: -3}},
		withUnknown,
	}
	leaves = append(leaves, makeLeaves(1000, 3, 1024)...)
	for i, l := range leaves {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeLeaf(l)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("leaf %d: encodeLeaf = %x, %v; proto.Marshal = %x", i, got, err, want)
		}
		if leafSize(l) != len(want) || cap(got) != len(want) {
			t.Fatalf("leaf %d: size %d, capacity %d, encoding %d bytes", i, leafSize(l), cap(got), len(want))
		}
	}
}

// SetMerkleNodes looks up only the nodes at or below the last index stored at their level; a
// changed node is refused wherever it is, at the end of a level between others, at the top
// level, or written twice in one call.
func TestSetMerkleNodesRefusesChangesAtEveryLevel(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	h := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	node := func(level uint, index uint64, b byte) tree.Node {
		return tree.Node{ID: compact.NewNodeID(level, index), Hash: h(b)}
	}
	set := func(nodes ...tree.Node) error {
		return ls.ReadWriteTransaction(ctx, testTree, func(ctx context.Context, tx storage.LogTreeTX) error {
			return tx.SetMerkleNodes(ctx, nodes)
		})
	}
	var first []tree.Node
	for level := range uint(3) {
		for index := range uint64(4) {
			first = append(first, node(level, index, byte(level*10+uint(index))))
		}
	}
	first = append(first, node(63, 0, 63))
	if err := set(first...); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		desc  string
		nodes []tree.Node
		want  error
	}{
		{"all again", first, nil},
		{"last of a middle level changed", []tree.Node{node(1, 3, 99)}, ErrNodeMismatch},
		{"last of the first level changed", []tree.Node{node(0, 3, 99)}, ErrNodeMismatch},
		{"top level changed", []tree.Node{node(63, 0, 99)}, ErrNodeMismatch},
		{"new node twice, changed", []tree.Node{node(1, 4, 1), node(1, 4, 2)}, ErrNodeMismatch},
		{"new nodes, one twice", []tree.Node{node(1, 5, 1), node(2, 4, 1), node(1, 5, 1)}, nil},
	} {
		if err := set(c.nodes...); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", c.desc, err, c.want)
		}
	}
	ids := []compact.NodeID{compact.NewNodeID(1, 3), compact.NewNodeID(1, 4), compact.NewNodeID(1, 5), compact.NewNodeID(63, 0)}
	got, err := ls.ReadNodes(ctx, testTreeID, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]byte{h(13), nil, h(1), h(63)} {
		if !bytes.Equal(got[i], want) {
			t.Errorf("node %+v = %x, want %x", ids[i], got[i], want)
		}
	}
}

// Leaves stored through an arena read back intact after later transactions, committed or rolled
// back, reused its memory, and the arena does reuse it.
func TestArenaAcrossTransactions(t *testing.T) {
	ls, _ := newTestTree(t)
	var arena Arena
	leaves := makeLeaves(0, 900, 700) // ~650 KiB a transaction: the arena grows past 64 KiB
	var first *byte
	store := func(batch []*trillian.LogLeaf, commit bool) {
		t.Helper()
		arena.Reset()
		if first != nil && &arena.buf[:1][0] != first {
			t.Fatal("the arena did not reuse its memory")
		}
		err := ls.db.Update(func(tx *bbolt.Tx) error {
			// Two calls in one transaction: the second MUST NOT overwrite the first's leaves.
			half := len(batch) / 2
			for _, part := range [][]*trillian.LogLeaf{batch[:half], batch[half:]} {
				if _, err := AddSequencedLeavesUnindexedTx(tx, testTree.TreeId, part, epoch, &arena); err != nil {
					return err
				}
			}
			if !commit {
				return errors.New("roll back")
			}
			return nil
		})
		if commit && err != nil {
			t.Fatal(err)
		}
		first = &arena.buf[:1][0]
	}
	store(leaves[:300], true)
	store(leaves[300:600], true)
	store(leaves[600:], false)
	store(leaves[600:], true)
	storedLeaves(t, ls, leaves)
}

// Inside a caller's transaction the sequencer takes the hashes the caller has at hand, from the
// tree size on, and reads the leaves that follow them: what it dequeues, and the tree it builds,
// are those of the stored leaves.
func TestInTxKnowing(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	tlog.InitMetrics(nil)
	leaves := makeLeaves(0, 10, 100)
	if _, err := ls.AddSequencedLeaves(ctx, testTree, leaves, epoch); err != nil {
		t.Fatal(err)
	}
	var asked []int64
	knowing := func(lo, hi int64) LeafHashes {
		return func(index int64) ([]byte, []byte, bool) {
			asked = append(asked, index)
			if index < lo || index > hi {
				return nil, nil, false
			}
			return leaves[index].MerkleLeafHash, leaves[index].LeafIdentityHash, true
		}
	}
	for _, c := range []struct {
		lo, hi    int64
		limit     int
		wantAsked []int64
	}{
		{0, 6, 3, []int64{0, 1, 2}},                 // all at hand
		{0, 6, 20, []int64{0, 1, 2, 3, 4, 5, 6, 7}}, // 0..6 at hand, 7..9 read
		{2, 6, 20, []int64{0}},                      // none from the tree size on: all read
	} {
		asked = nil
		err := ls.db.Update(func(tx *bbolt.Tx) error {
			return StorageInTxKnowing(tx, knowing(c.lo, c.hi)).ReadWriteTransaction(ctx, testTree, func(ctx context.Context, ltx storage.LogTreeTX) error {
				got, err := ltx.DequeueLeaves(ctx, c.limit, epoch)
				if err != nil {
					return err
				}
				if len(got) != min(c.limit, len(leaves)) {
					t.Fatalf("%+v: dequeued %d leaves", c, len(got))
				}
				for i, l := range got {
					w := leaves[i]
					if l.LeafIndex != w.LeafIndex || !bytes.Equal(l.MerkleLeafHash, w.MerkleLeafHash) || !bytes.Equal(l.LeafIdentityHash, w.LeafIdentityHash) {
						t.Fatalf("%+v: leaf %d differs", c, i)
					}
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(asked, c.wantAsked) {
			t.Errorf("%+v: the caller was asked for %v", c, asked)
		}
	}
	ts := clock.NewFake(epoch.Add(time.Second))
	err := ls.db.Update(func(tx *bbolt.Tx) error {
		n, err := tlog.IntegrateBatch(ctx, testTree, 4, 0, 0, ts, StorageInTxKnowing(tx, knowing(0, 6)), quota.Noop())
		if err != nil || n != 4 {
			t.Fatalf("IntegrateBatch = %d, %v; want 4", n, err)
		}
		ts.Set(ts.Now().Add(time.Second))
		n, err = tlog.IntegrateBatch(ctx, testTree, 100, 0, 0, ts, StorageInTxKnowing(tx, knowing(0, 6)), quota.Noop())
		if err != nil || n != 6 {
			t.Fatalf("IntegrateBatch = %d, %v; want 6", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, wantRoot := wantNodes(leaves)
	if r, err := ls.LatestRoot(testTree.TreeId); err != nil || r.TreeSize != 10 || !bytes.Equal(r.RootHash, wantRoot) {
		t.Fatalf("root = %+v, %v; want size 10 and %x", r, err, wantRoot)
	}
}

// Leaves appended in index order fill their pages: a leaf is never rewritten, so nothing is
// gained by leaving room in a page, and ~1.5 KiB leaves in 16 KiB pages (the ledger's state.db)
// leave no more than the part of a leaf that does not fit.
func TestLeafPagesFilled(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "state.db"), 0o600, &bbolt.Options{PageSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := EnsureTree(context.Background(), db, testTree, epoch); err != nil {
		t.Fatal(err)
	}
	leaves := makeLeaves(0, 3000, 1400)
	for lo := 0; lo < len(leaves); lo += 500 {
		if err := db.Update(func(tx *bbolt.Tx) error {
			_, err := AddSequencedLeavesUnindexedTx(tx, testTree.TreeId, leaves[lo:lo+500], epoch, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		tb, err := openTree(tx, testTree.TreeId)
		if err != nil {
			return err
		}
		s := tb.leaf.Stats()
		if fill := float64(s.LeafInuse) / float64(s.LeafAlloc); fill < 0.9 {
			t.Errorf("leaf pages %.0f%% full (%d of %d bytes), want at least 90%%", 100*fill, s.LeafInuse, s.LeafAlloc)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
