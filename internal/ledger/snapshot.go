package ledger

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.etcd.io/bbolt"
)

// ReadState opens a consistent read of the replicated state (a bbolt read transaction, held
// until the reader is closed or read to its end) and returns it with its length. Raft's leader
// streams it to a member its log no longer reaches; Apply goes on meanwhile.
func (l *Ledger) ReadState() (io.ReadCloser, int64, error) {
	pr, pw := io.Pipe()
	size := make(chan int64, 1)
	done := make(chan error, 1)
	go func() {
		err := l.view(func(tx *bbolt.Tx) error {
			size <- tx.Size()
			_, err := tx.WriteTo(pw)
			return err
		})
		pw.CloseWithError(err)
		done <- err
	}()
	select {
	case n := <-size:
		return pr, n, nil
	case err := <-done:
		return nil, 0, fmt.Errorf("read state: %w", err)
	}
}

// Restore replaces the state with a snapshot read from r. The snapshot is written beside
// state.db and synced; the node recomputes its tree root from the snapshot's leaves and refuses
// it if the stored tree disagrees (ErrTreeMismatch: a node trusts no other node's hashes), and
// only then renames it over state.db. A snapshot refused changes nothing.
func (l *Ledger) Restore(r io.Reader) error {
	ctx := context.Background()
	tmp := l.cfg.Path + ".restore"
	if err := writeSynced(tmp, r); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := verifyFile(ctx, tmp, l); err != nil {
		remove(tmp)
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
	l.notifyChanged()
	l.poke()
	return nil
}

// verifyFile checks the tree of a state file that is not (yet) this ledger's: its root,
// recomputed from its leaves, is the one it stores.
func verifyFile(ctx context.Context, path string, l *Ledger) error {
	st, err := openStore(ctx, path)
	if err != nil {
		return err
	}
	defer st.db.Close()
	return (&Ledger{st: st, log: l.log}).VerifyTree(ctx)
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
