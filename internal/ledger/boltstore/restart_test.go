package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/trillian"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/util/clock"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/durationpb"
)

const testTreeID = 42

var (
	testTree = &trillian.Tree{
		TreeId:          testTreeID,
		TreeState:       trillian.TreeState_ACTIVE,
		TreeType:        trillian.TreeType_PREORDERED_LOG,
		MaxRootDuration: durationpb.New(0),
	}
	epoch        = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	callerBucket = []byte("ledger/meta")
)

// makeLeaves returns n leaves with indexes from start on, with values of size bytes.
func makeLeaves(start, n int64, size int) []*trillian.LogLeaf {
	out := make([]*trillian.LogLeaf, n)
	for i := range out {
		idx := start + int64(i)
		val := bytes.Repeat([]byte{byte(idx)}, size)
		copy(val, fmt.Sprintf("leaf %d:", idx))
		id := rfc6962.DefaultHasher.HashLeaf(append([]byte("id"), val...))
		out[i] = &trillian.LogLeaf{
			LeafIndex:        idx,
			LeafValue:        val,
			LeafIdentityHash: id,
			MerkleLeafHash:   rfc6962.DefaultHasher.HashLeaf(val),
		}
	}
	return out
}

// applyLeaves writes leaves together with a caller-owned record, as the ledger's FSM does.
func applyLeaves(t testing.TB, db *bbolt.DB, leaves []*trillian.LogLeaf, applied uint64) {
	t.Helper()
	err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(callerBucket)
		if err != nil {
			return err
		}
		res, err := AddSequencedLeavesTx(tx, testTreeID, leaves, epoch)
		if err != nil {
			return err
		}
		for i, r := range res {
			if c := r.GetStatus().GetCode(); c != 0 {
				return fmt.Errorf("leaf %d: status %d %s", i, c, r.GetStatus().GetMessage())
			}
		}
		return b.Put([]byte("applied"), u64(applied))
	})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// integrate runs Trillian's sequencer until it has nothing left, advancing the fake clock.
func integrate(t testing.TB, ls *LogStorage, ts *clock.FakeTimeSource) int {
	t.Helper()
	tlog.InitMetrics(nil) // IntegrateBatch needs its metrics initialised; once per process
	total := 0
	for {
		ts.Set(ts.Now().Add(time.Second))
		n, err := tlog.IntegrateBatch(context.Background(), testTree, 1000, 0, 0, ts, ls, quota.Noop())
		if err != nil {
			t.Fatalf("IntegrateBatch: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// wantNodes computes every perfect-subtree node (leaves included) of the first n leaves, and the root.
func wantNodes(leaves []*trillian.LogLeaf) (map[compact.NodeID][]byte, []byte) {
	fact := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := fact.NewEmptyRange(0)
	nodes := map[compact.NodeID][]byte{}
	for _, l := range leaves {
		if err := r.Append(l.MerkleLeafHash, func(id compact.NodeID, h []byte) { nodes[id] = h }); err != nil {
			panic(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		panic(err)
	}
	return nodes, root
}

func checkTree(t *testing.T, ls *LogStorage, leaves []*trillian.LogLeaf) {
	t.Helper()
	nodes, wantRoot := wantNodes(leaves)
	root, err := ls.LatestRoot(testTreeID)
	if err != nil {
		t.Fatalf("LatestRoot: %v", err)
	}
	if root.TreeSize != uint64(len(leaves)) || !bytes.Equal(root.RootHash, wantRoot) {
		t.Fatalf("root = size %d hash %x, want size %d hash %x", root.TreeSize, root.RootHash, len(leaves), wantRoot)
	}
	if hist, err := ls.RootAt(testTreeID, root.TreeSize); err != nil || hist == nil || !bytes.Equal(hist.RootHash, wantRoot) {
		t.Fatalf("RootAt(%d) = %v, %v; want the latest root", root.TreeSize, hist, err)
	}
	ids := make([]compact.NodeID, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	// One node that MUST NOT exist: the ephemeral root of an imperfect tree, or the next leaf.
	ids = append(ids, compact.NewNodeID(0, uint64(len(leaves))))
	got, err := ls.ReadNodes(context.Background(), testTreeID, ids)
	if err != nil {
		t.Fatalf("ReadNodes: %v", err)
	}
	for i, id := range ids[:len(ids)-1] {
		if !bytes.Equal(got[i], nodes[id]) {
			t.Fatalf("node %+v = %x, want %x", id, got[i], nodes[id])
		}
	}
	if got[len(ids)-1] != nil {
		t.Fatalf("node beyond the tree is stored")
	}
	// Tile rows: level-0 (leaf hashes) and level-8 rows read as contiguous ranges.
	for _, level := range []uint{0, 8} {
		row, err := ls.ReadNodeRange(context.Background(), testTreeID, level, 0, 256)
		width := min(256, len(leaves)>>level)
		if err != nil || len(row) != width {
			t.Fatalf("ReadNodeRange(level %d) = %d hashes, %v; want %d", level, len(row), err, width)
		}
		for i, h := range row {
			if want := nodes[compact.NewNodeID(level, uint64(i))]; !bytes.Equal(h, want) {
				t.Fatalf("tile row level %d hash %d = %x, want %x", level, i, h, want)
			}
		}
	}
	storedLeaves(t, ls, leaves)
}

// storedLeaves fails t unless the tree holds exactly want, from index 0, each at its index.
func storedLeaves(t *testing.T, ls *LogStorage, want []*trillian.LogLeaf) {
	t.Helper()
	got, err := ls.ReadLeaves(context.Background(), testTreeID, 0, int64(len(want))+10)
	if err != nil || len(got) != len(want) {
		t.Fatalf("ReadLeaves = %d leaves, %v; want %d", len(got), err, len(want))
	}
	for i, l := range got {
		if !sameLeaf(l, want[i]) || l.LeafIndex != int64(i) {
			t.Fatalf("leaf %d differs", i)
		}
	}
}

// TestRestart writes and integrates leaves, closes the file, reopens it, and checks that the
// root, nodes and leaves survive and that integration resumes where it stopped.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ts := clock.NewFake(epoch)
	all := makeLeaves(0, 700, 64)

	db := openPath(t, path)
	if _, err := EnsureTree(context.Background(), db, testTree, ts.Now()); err != nil {
		t.Fatalf("EnsureTree: %v", err)
	}
	ls, _ := newStorage(t, db)
	applyLeaves(t, db, all[:300], 1)
	applyLeaves(t, db, all[300:400], 2) // stored, deliberately not integrated before the restart
	if n := integrate(t, ls, ts); n != 400 {
		t.Fatalf("integrated %d, want 400", n)
	}
	applyLeaves(t, db, all[400:500], 3)
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	db = openPath(t, path)
	if _, err := EnsureTree(context.Background(), db, testTree, ts.Now()); err != nil {
		t.Fatalf("EnsureTree after restart: %v", err)
	}
	ls, _ = newStorage(t, db)
	if root, err := ls.LatestRoot(testTreeID); err != nil || root.TreeSize != 400 {
		t.Fatalf("root after restart = %v, %v; want size 400", root, err)
	}
	applyLeaves(t, db, all[500:], 4)
	if n := integrate(t, ls, ts); n != 300 {
		t.Fatalf("integrated %d after restart, want 300", n)
	}
	checkTree(t, ls, all)
	_ = db.View(func(tx *bbolt.Tx) error {
		if got := tx.Bucket(callerBucket).Get([]byte("applied")); !bytes.Equal(got, u64(4)) {
			t.Errorf("caller's record = %x, want 4", got)
		}
		return nil
	})
}

// TestCallerTxAtomic checks that leaves written in a caller's transaction that rolls back are
// not stored.
func TestCallerTxAtomic(t *testing.T) {
	db := openDB(t)
	if _, err := EnsureTree(context.Background(), db, testTree, epoch); err != nil {
		t.Fatal(err)
	}
	ls, _ := newStorage(t, db)
	errAbort := errors.New("abort")
	err := db.Update(func(tx *bbolt.Tx) error {
		if _, err := AddSequencedLeavesTx(tx, testTreeID, makeLeaves(0, 3, 8), epoch); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Update = %v, want abort", err)
	}
	if got, err := ls.ReadLeaves(context.Background(), testTreeID, 0, 3); err != nil || len(got) != 0 {
		t.Fatalf("after rollback ReadLeaves = %d leaves, %v; want none", len(got), err)
	}
	if _, err := AddSequencedLeavesTx(mustBegin(t, db), 7, nil, epoch); !errors.Is(err, ErrTreeNotFound) {
		t.Fatalf("unknown tree: err = %v, want ErrTreeNotFound", err)
	}
}

func mustBegin(t *testing.T, db *bbolt.DB) *bbolt.Tx {
	t.Helper()
	tx, err := db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}
