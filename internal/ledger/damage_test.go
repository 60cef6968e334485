package ledger

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A byte flipped in a stored leaf while the node was down: the node refuses to serve the entry
// and its bundle rather than serve the damaged bytes.
func TestDamagedLeafIsNotServed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	l := openTest(t, path, nil)
	l.Apply([]Command{entries(t, 1, 0, 10)})
	waitSize(t, l, 10)
	e, err := l.Entry(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	db, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(db, e.Leaf)
	if i < 0 {
		t.Fatal("leaf not found in the file")
	}
	db[i+len(e.Leaf)/2] ^= 0x01
	if err := os.WriteFile(path, db, 0o600); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, path, nil)
	if _, err := l2.Entry(context.Background(), 5); !errors.Is(err, ErrTreeMismatch) {
		t.Fatalf("Entry of the damaged leaf: %v", err)
	}
	if _, err := l2.EntryBundle(context.Background(), 0, 10); !errors.Is(err, ErrTreeMismatch) {
		t.Fatalf("EntryBundle over the damaged leaf: %v", err)
	}
	if _, err := l2.Entry(context.Background(), 4); err != nil {
		t.Fatalf("an intact entry: %v", err)
	}
}
