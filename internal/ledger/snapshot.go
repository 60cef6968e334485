package ledger

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.etcd.io/bbolt"
)

// Snapshot streams a consistent copy of the replicated state (a bbolt read transaction) to w.
// Raft calls it from its snapshot goroutine while Apply goes on.
func (l *Ledger) Snapshot(w io.Writer) error {
	return l.view(func(tx *bbolt.Tx) error {
		_, err := tx.WriteTo(w)
		return err
	})
}

// Restore replaces the state with a snapshot read from r. The snapshot is written beside
// state.db, synced, and renamed over it; the node then recomputes its tree root from the restored
// leaves and refuses the snapshot if the stored tree disagrees (ErrTreeMismatch): a node trusts no
// other node's hashes.
func (l *Ledger) Restore(r io.Reader) error {
	ctx := context.Background()
	tmp := l.cfg.Path + ".restore"
	if err := writeSynced(tmp, r); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	l.mu.Lock()
	if err := l.st.db.Close(); err != nil {
		l.mu.Unlock()
		return fmt.Errorf("restore: close state: %w", err)
	}
	if err := os.Rename(tmp, l.cfg.Path); err != nil {
		l.mu.Unlock()
		return fmt.Errorf("restore: %w", err)
	}
	st, err := openStore(ctx, l.cfg.Path)
	if err != nil {
		l.mu.Unlock()
		return fmt.Errorf("restore: %w", err)
	}
	l.st = st
	l.mu.Unlock()
	if err := l.loadCounters(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := l.VerifyTree(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	l.notifyChanged()
	l.poke()
	return nil
}

func writeSynced(path string, r io.Reader) error {
	if err := remove(path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
