package boltstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/storage"
	"go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var _ storage.AdminStorage = (*AdminStorage)(nil)

// AdminStorage is Trillian's tree registry on bbolt.
type AdminStorage struct {
	db  *bbolt.DB
	now func() time.Time
}

// NewAdminStorage returns the admin storage over db. The caller owns db and MUST keep it open
// while the storage is in use. Buckets are created on the first write.
func NewAdminStorage(db *bbolt.DB) *AdminStorage {
	return &AdminStorage{db: db, now: time.Now}
}

// CheckDatabaseAccessible implements storage.AdminStorage.
func (s *AdminStorage) CheckDatabaseAccessible(ctx context.Context) error {
	return checkDB(s.db)
}

func checkDB(db *bbolt.DB) error {
	return db.View(func(*bbolt.Tx) error { return nil })
}

// Snapshot implements storage.AdminStorage: a bbolt read transaction.
func (s *AdminStorage) Snapshot(ctx context.Context) (storage.ReadOnlyAdminTX, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return &adminTX{tx: tx, now: s.now}, nil
}

// ReadWriteTransaction implements storage.AdminStorage: f runs inside one bbolt write
// transaction, committed (and fsynced) only if f returns nil.
func (s *AdminStorage) ReadWriteTransaction(ctx context.Context, f storage.AdminTXFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	atx := &adminTX{tx: tx, now: s.now}
	defer func() { _ = atx.Close() }()
	if err := f(ctx, atx); err != nil {
		return err
	}
	return atx.Commit()
}

// adminTX is one bbolt transaction seen as a Trillian admin transaction.
type adminTX struct {
	mu  sync.Mutex
	tx  *bbolt.Tx // nil once committed or closed
	now func() time.Time
}

func (t *adminTX) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return finish(&t.tx, true)
}

func (t *adminTX) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return finish(&t.tx, false)
}

// finish ends a bbolt transaction once: commit applies a writable one, anything else rolls back.
// Later calls are no-ops, as Trillian's Close-after-Commit pattern requires.
func finish(txp **bbolt.Tx, commit bool) error {
	tx := *txp
	if tx == nil {
		return nil
	}
	*txp = nil
	if commit && tx.Writable() {
		return tx.Commit()
	}
	if err := tx.Rollback(); err != nil && !errors.Is(err, bbolt.ErrTxClosed) {
		return err
	}
	return nil
}

func (t *adminTX) live() (*bbolt.Tx, error) {
	if t.tx == nil {
		return nil, ErrTxDone
	}
	return t.tx, nil
}

func (t *adminTX) GetTree(ctx context.Context, treeID int64) (*trillian.Tree, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, err := t.live()
	if err != nil {
		return nil, err
	}
	return getTree(tx, treeID)
}

func getTree(tx *bbolt.Tx, treeID int64) (*trillian.Tree, error) {
	var v []byte
	if b := tx.Bucket(bucketTrees); b != nil {
		v = b.Get(treeKey(treeID))
	}
	if v == nil {
		return nil, notFound(treeID)
	}
	tree := &trillian.Tree{}
	if err := proto.Unmarshal(v, tree); err != nil {
		return nil, fmt.Errorf("tree %d: %w", treeID, err)
	}
	return tree, nil
}

func notFound(treeID int64) error {
	return fmt.Errorf("tree %d: %w", treeID, ErrTreeNotFound)
}

func (t *adminTX) ListTrees(ctx context.Context, includeDeleted bool) ([]*trillian.Tree, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, err := t.live()
	if err != nil {
		return nil, err
	}
	return listTrees(tx, includeDeleted)
}

func listTrees(tx *bbolt.Tx, includeDeleted bool) ([]*trillian.Tree, error) {
	b := tx.Bucket(bucketTrees)
	if b == nil {
		return nil, nil
	}
	var out []*trillian.Tree
	err := b.ForEach(func(k, v []byte) error {
		tree := &trillian.Tree{}
		if err := proto.Unmarshal(v, tree); err != nil {
			return fmt.Errorf("tree %x: %w", k, err)
		}
		if includeDeleted || !tree.Deleted {
			out = append(out, tree)
		}
		return nil
	})
	return out, err
}

func (t *adminTX) writable() (*bbolt.Tx, error) {
	tx, err := t.live()
	if err != nil {
		return nil, err
	}
	if !tx.Writable() {
		return nil, status.Error(codes.FailedPrecondition, "read-only transaction")
	}
	return tx, nil
}

func putTree(tx *bbolt.Tx, tree *trillian.Tree) (*trillian.Tree, error) {
	b, err := tx.CreateBucketIfNotExists(bucketTrees)
	if err != nil {
		return nil, err
	}
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(tree)
	if err != nil {
		return nil, err
	}
	if err := b.Put(treeKey(tree.TreeId), v); err != nil {
		return nil, err
	}
	// A fresh copy: callers compare timestamps with reflect.DeepEqual, which sees proto size caches.
	return proto.Clone(tree).(*trillian.Tree), nil
}

func (t *adminTX) CreateTree(ctx context.Context, tree *trillian.Tree) (*trillian.Tree, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, err := t.writable()
	if err != nil {
		return nil, err
	}
	if err := storage.ValidateTreeForCreation(ctx, tree); err != nil {
		return nil, err
	}
	if tree.StorageSettings != nil {
		return nil, status.Errorf(codes.InvalidArgument, "storage_settings not supported, got %v", tree.StorageSettings)
	}
	meta := proto.Clone(tree).(*trillian.Tree)
	for {
		id, err := storage.NewTreeID()
		if err != nil {
			return nil, err
		}
		if _, err := getTree(tx, id); status.Code(err) == codes.NotFound {
			meta.TreeId = id
			break
		}
	}
	now := timestamppb.New(t.now())
	meta.CreateTime, meta.UpdateTime = now, proto.Clone(now).(*timestamppb.Timestamp)
	return createTreeTx(tx, meta)
}

// createTreeTx stores tree (its ID already chosen) and creates its data buckets.
func createTreeTx(tx *bbolt.Tx, tree *trillian.Tree) (*trillian.Tree, error) {
	if err := createTreeBuckets(tx, tree.TreeId); err != nil {
		return nil, fmt.Errorf("create tree %d buckets: %w", tree.TreeId, err)
	}
	return putTree(tx, tree)
}

func (t *adminTX) UpdateTree(ctx context.Context, treeID int64, updateFunc func(*trillian.Tree)) (*trillian.Tree, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, err := t.writable()
	if err != nil {
		return nil, err
	}
	tree, err := getTree(tx, treeID)
	if err != nil {
		return nil, err
	}
	before := proto.Clone(tree).(*trillian.Tree)
	updateFunc(tree)
	if err := storage.ValidateTreeForUpdate(ctx, before, tree); err != nil {
		return nil, err
	}
	if tree.StorageSettings != nil {
		return nil, status.Errorf(codes.InvalidArgument, "storage_settings not supported, got %v", tree.StorageSettings)
	}
	tree.UpdateTime = timestamppb.New(t.now())
	return putTree(tx, tree)
}

// setDeleted flips a tree's soft-deleted flag; the tree MUST currently be in state !deleted.
func (t *adminTX) setDeleted(treeID int64, deleted bool) (*trillian.Tree, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, err := t.writable()
	if err != nil {
		return nil, err
	}
	tree, err := getTree(tx, treeID)
	if err != nil {
		return nil, err
	}
	if tree.Deleted == deleted {
		return nil, status.Errorf(codes.FailedPrecondition, "tree %d: deleted is already %v", treeID, deleted)
	}
	tree.Deleted = deleted
	tree.DeleteTime = nil
	if deleted {
		tree.DeleteTime = timestamppb.New(t.now())
	}
	return putTree(tx, tree)
}

func (t *adminTX) SoftDeleteTree(ctx context.Context, treeID int64) (*trillian.Tree, error) {
	return t.setDeleted(treeID, true)
}

func (t *adminTX) UndeleteTree(ctx context.Context, treeID int64) (*trillian.Tree, error) {
	return t.setDeleted(treeID, false)
}

// HardDeleteTree removes a soft-deleted tree and all its data.
func (t *adminTX) HardDeleteTree(ctx context.Context, treeID int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	tx, err := t.writable()
	if err != nil {
		return err
	}
	tree, err := getTree(tx, treeID)
	if err != nil {
		return err
	}
	if !tree.Deleted {
		return status.Errorf(codes.FailedPrecondition, "tree %d is not soft deleted", treeID)
	}
	if err := tx.DeleteBucket(treeBucketName(treeID)); err != nil && !errors.Is(err, bbolt.ErrBucketNotFound) {
		return err
	}
	return tx.Bucket(bucketTrees).Delete(treeKey(treeID))
}
