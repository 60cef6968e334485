package ledger

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"

	"github.com/witnessnet/witnessnet/internal/durable"
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
// state.db and synced, then taken as RestoreFile takes a file.
func (l *Ledger) Restore(r io.Reader) error {
	tmp := l.cfg.Path + ".restore"
	if err := writeSynced(tmp, r); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := l.RestoreFile(tmp); err != nil {
		remove(tmp)
		return err
	}
	return nil
}

// RestoreFile replaces the state with a snapshot in the file at path, on state.db's file
// system: the node recomputes the snapshot's tree root from its leaves and refuses it if the
// stored tree disagrees (ErrTreeMismatch: a node trusts no other node's hashes), and only then
// moves the file over state.db. A snapshot refused changes nothing; its file is left where it
// was.
func (l *Ledger) RestoreFile(path string) error {
	ctx := context.Background()
	st, err := openStore(ctx, path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// The check reads every leaf of a file that is not in the page cache when the member's memory
	// limit is smaller than the file (BENCHMARKS.md, ninth session).
	advised := readInOrder(st.db)
	err = (&Ledger{st: st, log: l.log}).VerifyTree(ctx)
	advised()
	if err != nil {
		st.db.Close()
		return fmt.Errorf("restore: %w", err)
	}
	// The verified store stays open and becomes the ledger's: bbolt reads and writes through
	// the file it opened, which the rename does not change (opening it again would read every
	// page once more to rebuild the freelist).
	l.mu.Lock()
	if err := os.Rename(path, l.cfg.Path); err != nil {
		l.mu.Unlock()
		st.db.Close()
		return fmt.Errorf("restore: %w", err)
	}
	old := l.st
	l.st = st
	l.mu.Unlock()
	if err := old.db.Close(); err != nil {
		l.log.Warn("closing the state a snapshot replaced", "err", err)
	}
	if err := durable.SyncDir(filepath.Dir(l.cfg.Path)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := l.loadCounters(ctx); err != nil {
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
	return durable.WriteFile(path, r)
}
