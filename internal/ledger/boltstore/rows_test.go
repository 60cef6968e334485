package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/trillian/storage"
	"github.com/google/trillian/storage/tree"
	"github.com/google/trillian/util/clock"
	"github.com/transparency-dev/merkle/compact"
	"go.etcd.io/bbolt"
)

// rewriteRows moves a tree's node rows into the sub-bucket name of an earlier layout: put stores
// one row (its level, the index of its first node and its value) there. The rows bucket is gone
// afterwards, as in a file written before it.
func rewriteRows(t *testing.T, db *bbolt.DB, name []byte, put func(old *bbolt.Bucket, level uint, first uint64, row []byte) error) {
	t.Helper()
	err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(treeBucketName(testTreeID))
		old, err := b.CreateBucket(name)
		if err != nil {
			return err
		}
		c := b.Bucket(subRows).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			level, first, err := rowOf(k)
			if err != nil {
				return err
			}
			if err := put(old, level, first, v); err != nil {
				return err
			}
		}
		return b.DeleteBucket(subRows)
	})
	if err != nil {
		t.Fatalf("rewrite rows into %q: %v", name, err)
	}
}

// toNodesV1 rewrites a tree's node rows as a file written before rows holds its nodes: one key
// per node in the "node" sub-bucket.
func toNodesV1(t *testing.T, db *bbolt.DB) {
	rewriteRows(t, db, subNodeV1, func(old *bbolt.Bucket, level uint, first uint64, row []byte) error {
		for slot := range rowWidth {
			h, err := rowNode(row, slot)
			if err != nil {
				return err
			}
			if h != nil {
				if err := old.Put(nodeKey(compact.NewNodeID(level, first+uint64(slot))), bytes.Clone(h)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// toRowsByLevel rewrites a tree's node rows as a file written before rows sorted by end holds
// them: the same rows, keyed level (1B) || index/128 (8B BE) in the "rows" sub-bucket.
func toRowsByLevel(t *testing.T, db *bbolt.DB) {
	rewriteRows(t, db, subRowsByLevel, func(old *bbolt.Bucket, level uint, first uint64, row []byte) error {
		return old.Put(append([]byte{byte(level)}, binary.BigEndian.AppendUint64(nil, first/rowWidth)...), bytes.Clone(row))
	})
}

// A file whose nodes are one key each, or in rows sorted level by level, as files written before
// rows and before rows sorted by end hold them, is moved into rows sorted by end when it is
// opened (by NewLogStorage, or by EnsureTree before it): every node, root and leaf reads the
// same, the old bucket is gone, and integration carries on.
func TestNodesMovedIntoRows(t *testing.T) {
	for _, c := range []struct {
		old         string
		ensureFirst bool
	}{{"node", false}, {"node", true}, {"rows", false}, {"rows", true}} {
		ensureFirst := c.ensureFirst
		path := filepath.Join(t.TempDir(), "state.db")
		ts := clock.NewFake(epoch)
		all := makeLeaves(0, 1000, 64)

		db := openPath(t, path)
		if _, err := EnsureTree(context.Background(), db, testTree, ts.Now()); err != nil {
			t.Fatal(err)
		}
		ls, _ := newStorage(t, db)
		applyLeaves(t, db, all[:700], 1)
		if n := integrate(t, ls, ts); n != 700 {
			t.Fatalf("integrated %d, want 700", n)
		}
		if c.old == "node" {
			toNodesV1(t, db)
		} else {
			toRowsByLevel(t, db)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		db = openPath(t, path)
		if ensureFirst {
			if _, err := EnsureTree(context.Background(), db, testTree, ts.Now()); err != nil {
				t.Fatalf("EnsureTree on the earlier layout: %v", err)
			}
		}
		ls, _ = newStorage(t, db)
		_ = db.View(func(tx *bbolt.Tx) error {
			b := tx.Bucket(treeBucketName(testTreeID))
			if b.Bucket(subNodeV1) != nil || b.Bucket(subRowsByLevel) != nil || b.Bucket(subRows) == nil {
				t.Errorf("after opening from %q: node bucket %v, rows by level %v, rows by end %v; want the rows by end only",
					c.old, b.Bucket(subNodeV1) != nil, b.Bucket(subRowsByLevel) != nil, b.Bucket(subRows) != nil)
			}
			return nil
		})
		checkTree(t, ls, all[:700])
		applyLeaves(t, db, all[700:], 2)
		if n := integrate(t, ls, ts); n != 300 {
			t.Fatalf("integrated %d after moving the nodes, want 300", n)
		}
		checkTree(t, ls, all)
	}
}

// Node ranges stop at the first node not stored, within a row and across rows.
func TestNodeRangeAcrossRows(t *testing.T) {
	ls, _ := newTestTree(t)
	ctx := context.Background()
	var nodes []tree.Node
	for index := uint64(250); index <= 260; index++ {
		if index != 254 {
			nodes = append(nodes, tree.Node{ID: compact.NewNodeID(3, index), Hash: bytes.Repeat([]byte{byte(index)}, 32)})
		}
	}
	err := ls.ReadWriteTransaction(ctx, testTree, func(ctx context.Context, tx storage.LogTreeTX) error {
		return tx.SetMerkleNodes(ctx, nodes)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		start     uint64
		count     int
		wantFirst byte
		wantLen   int
	}{
		{250, 20, 250, 4},
		{255, 20, 255, 6}, // 255 in one row, 256..260 in the next
		{255, 3, 255, 3},
		{254, 5, 0, 0},
		{261, 5, 0, 0},
		{0, 5, 0, 0},
	} {
		got, err := ls.ReadNodeRange(ctx, testTreeID, 3, c.start, c.count)
		if err != nil || len(got) != c.wantLen {
			t.Fatalf("ReadNodeRange(3, %d, %d) = %d hashes, %v; want %d", c.start, c.count, len(got), err, c.wantLen)
		}
		for i, h := range got {
			if want := bytes.Repeat([]byte{c.wantFirst + byte(i)}, 32); !bytes.Equal(h, want) {
				t.Fatalf("ReadNodeRange(3, %d, %d)[%d] = %x, want %x", c.start, c.count, i, h, want)
			}
		}
	}
	if got, err := ls.ReadNodeRange(ctx, testTreeID, 4, 250, 5); err != nil || len(got) != 0 {
		t.Fatalf("another level: %d hashes, %v", len(got), err)
	}
}

// A stored row of the wrong shape is reported, never read as a hash.
func TestMalformedRow(t *testing.T) {
	full := make([]byte, bitmapSize+2*hashSize)
	full[0] = 0b11
	for _, c := range []struct {
		desc string
		v    []byte
		slot int
		ok   bool
	}{
		{"two slots, first", full, 0, true},
		{"two slots, absent third", full, 2, true},
		{"bitmap only", make([]byte, bitmapSize), 5, true},
		{"short bitmap", make([]byte, bitmapSize-1), 0, false},
		{"partial hash", full[:len(full)-1], 0, false},
		{"more slots than a row", make([]byte, bitmapSize+(rowWidth+1)*hashSize), 0, false},
		{"marked beyond its slots", append([]byte{0b100}, full[1:]...), 2, false},
	} {
		_, err := rowNode(c.v, c.slot)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, errBadKey)) {
			t.Errorf("%s: err = %v", c.desc, err)
		}
	}
}

// The rows that appending leaves changes sort after every row it does not change, so that a
// commit rewrites the last pages of the rows bucket only: every node completed by leaves
// old..new-1 lies in a row whose key is above the key of any row that ends at or below old.
func TestRowKeysOfAppendsSortLast(t *testing.T) {
	for _, c := range []struct{ old, new uint64 }{
		{0, 1}, {127, 128}, {128, 316}, {1000, 1188}, {56400, 56588}, {65535, 65537},
		{1<<20 - 5, 1<<20 + 183}, {1<<40 + 7, 1<<40 + 9000},
	} {
		// The highest key of a row not changed: among rows ending at or below old, the last
		// one of each level (a row's end grows with its index).
		var unchanged []byte
		for level := uint(0); level <= maxLevel; level++ {
			span := uint64(rowWidth) << level
			if level > 50 || c.old < span {
				continue
			}
			k := rowKey(level, (c.old/span-1)*rowWidth)
			if bytes.Compare(k[:], unchanged) > 0 {
				unchanged = k[:]
			}
		}
		// Every node the appends complete: (level, index) with its last leaf in old..new-1.
		for level := uint(0); level <= 50; level++ {
			width := uint64(1) << level
			for index := c.old / width; (index+1)*width <= c.new; index++ {
				if (index+1)*width <= c.old {
					continue
				}
				if k := rowKey(level, index); bytes.Compare(k[:], unchanged) <= 0 {
					t.Fatalf("appending %d..%d: node (%d, %d) has row key %x, not above %x of a row it does not change", c.old, c.new-1, level, index, k, unchanged)
				}
			}
		}
	}
}

// rowOf inverts rowKey at every level, and refuses keys that rowKey does not make.
func TestRowKeyRoundTrip(t *testing.T) {
	for level := uint(0); level <= maxLevel; level++ {
		for _, index := range []uint64{0, 1, 127, 128, 1000, 1 << 30, 1<<63 - 1, 1<<64 - 1} {
			k := rowKey(level, index)
			gotLevel, first, err := rowOf(k[:])
			if err != nil || gotLevel != level || first != index/rowWidth*rowWidth {
				t.Fatalf("rowOf(rowKey(%d, %d)) = %d, %d, %v", level, index, gotLevel, first, err)
			}
		}
	}
	good := rowKey(3, 1000)
	for _, k := range [][]byte{
		nil, good[:16], append(good[:16:16], 64), // short, and a level above 63
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},          // a row ending at 0
		append(append([]byte{}, good[:15]...), good[15]|1, good[16]), // an end that is not a multiple of the row's span
	} {
		if _, _, err := rowOf(k); !errors.Is(err, errBadKey) {
			t.Errorf("rowOf(%x) = %v, want errBadKey", k, err)
		}
	}
}

// A file of the level-by-level layout whose rows do not parse is refused when opened, and left
// as it was: the move is one transaction.
func TestMalformedRowsByLevelRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ts := clock.NewFake(epoch)
	db := openPath(t, path)
	if _, err := EnsureTree(context.Background(), db, testTree, ts.Now()); err != nil {
		t.Fatal(err)
	}
	ls, _ := newStorage(t, db)
	applyLeaves(t, db, makeLeaves(0, 300, 64), 1)
	if n := integrate(t, ls, ts); n != 300 {
		t.Fatalf("integrated %d, want 300", n)
	}
	toRowsByLevel(t, db)
	for _, bad := range [][]byte{{0, 1, 2}, append([]byte{0}, binary.BigEndian.AppendUint64(nil, 1<<57)...)} {
		err := db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(treeBucketName(testTreeID)).Bucket(subRowsByLevel).Put(bad, make([]byte, bitmapSize))
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewLogStorage(db); !errors.Is(err, errBadKey) {
			t.Fatalf("opening a file with row key %x: %v, want errBadKey", bad, err)
		}
		_ = db.View(func(tx *bbolt.Tx) error {
			b := tx.Bucket(treeBucketName(testTreeID))
			if b.Bucket(subRowsByLevel) == nil || b.Bucket(subRows) != nil {
				t.Errorf("after a refused move: rows by level %v, rows by end %v; want the file as it was", b.Bucket(subRowsByLevel) != nil, b.Bucket(subRows) != nil)
			}
			return nil
		})
		_ = db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(treeBucketName(testTreeID)).Bucket(subRowsByLevel).Delete(bad)
		})
	}
}
