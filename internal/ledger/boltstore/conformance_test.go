package boltstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/trillian/integration/storagetest"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/storage/testonly"
	"go.etcd.io/bbolt"
)

// openDB opens a fresh bbolt file that the test closes when it ends.
func openDB(t testing.TB) *bbolt.DB {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "state.db"))
}

func openPath(t testing.TB, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newStorage(t testing.TB, db *bbolt.DB) (*LogStorage, *AdminStorage) {
	t.Helper()
	ls, err := NewLogStorage(db)
	if err != nil {
		t.Fatalf("NewLogStorage: %v", err)
	}
	return ls, NewAdminStorage(db)
}

// TestLogStorageSuite runs Trillian's own log storage conformance suite, every test on a fresh file.
func TestLogStorageSuite(t *testing.T) {
	storagetest.RunLogStorageTests(t, func(ctx context.Context, t *testing.T) (storage.LogStorage, storage.AdminStorage) {
		return newStorage(t, openDB(t))
	})
}

// TestAdminStorageSuite runs Trillian's admin storage conformance suite.
func TestAdminStorageSuite(t *testing.T) {
	tester := &testonly.AdminStorageTester{NewAdminStorage: func() storage.AdminStorage {
		_, as := newStorage(t, openDB(t))
		return as
	}}
	tester.RunAllTests(t)
}
