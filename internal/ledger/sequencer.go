package ledger

import (
	"context"
	"encoding/binary"
	"time"

	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/util/clock"
	"go.etcd.io/bbolt"
)

// sequence runs Trillian's integration whenever entries are applied. It integrates up to the next
// checkpoint boundary and stops there, so that the node computes (and its OnBoundary hook sees)
// its root at exactly each boundary size, the sizes every node cosigns.
func (l *Ledger) sequence(ctx context.Context) {
	defer close(l.done)
	var announced uint64
	l.announceBoundary(ctx, true, &announced)
	flush := time.NewTicker(indexFlush)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-flush.C:
			// Entries short of a full index batch are indexed once they have waited this long.
			if _, err := l.indexStep(1); err != nil && ctx.Err() == nil {
				l.log.Error("index", "err", err)
			}
			continue
		}
		// A boundary may land at a size already integrated (the leader marks it after the
		// entries): announce it without waiting for more leaves.
		l.announceBoundary(ctx, false, &announced)
		for ctx.Err() == nil {
			progressed, err := l.integrateStep(ctx)
			if err == nil {
				// The boundary first: indexing must not hold back a checkpoint.
				l.announceBoundary(ctx, false, &announced)
				var indexed bool
				indexed, err = l.indexStep(indexBatch)
				progressed = progressed || indexed
			}
			if err != nil {
				if ctx.Err() == nil {
					l.log.Error("integrate", "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
				break
			}
			if !progressed {
				break
			}
		}
	}
}

// integrateStep integrates one batch toward the next target and reports whether the tree grew.
// Apply integrates what it applies in the same transaction; this catches up entries applied
// but not integrated, which a state.db written before that was so may hold.
func (l *Ledger) integrateStep(ctx context.Context) (bool, error) {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	size := l.integrated.Load()
	target := l.next.Load()
	if b := l.nextBoundary(size); b != 0 && b < target {
		target = b
	}
	if target <= size {
		return false, nil
	}
	limit := min(int(target-size), l.cfg.IntegrateBatch)
	l.mu.RLock()
	st := l.st
	_, err := tlog.IntegrateBatch(ctx, st.tree, limit, 0, 0, clock.System, st.logs, quota.Noop())
	var newSize uint64
	if err == nil {
		var root rootInfo
		root, err = st.rootInfo(ctx)
		newSize = root.Size
	}
	l.mu.RUnlock()
	if err != nil {
		return false, err
	}
	if newSize <= size {
		return false, nil
	}
	l.integrated.Store(newSize)
	l.notifyChanged()
	return true, nil
}

// announceBoundary calls OnBoundary once for each boundary the tree has reached, in order: the
// tree may pass several between two calls, since Apply integrates as it applies. At start-up it
// announces only the last boundary at or below the tree size, so a restarted node cosigns again.
func (l *Ledger) announceBoundary(ctx context.Context, startup bool, announced *uint64) {
	if l.cfg.OnBoundary == nil {
		return
	}
	size := l.integrated.Load()
	if startup {
		if b := l.boundaryAtOrBelow(size); b > *announced {
			*announced = b
			l.announce(ctx, b)
		}
		return
	}
	for ctx.Err() == nil {
		b := l.nextBoundary(*announced)
		if b == 0 || b > size {
			return
		}
		*announced = b
		l.announce(ctx, b)
	}
}

func (l *Ledger) announce(ctx context.Context, b uint64) {
	root, err := l.RootAt(ctx, b)
	if err != nil {
		l.log.Error("root at boundary", "size", b, "err", err)
		return
	}
	l.cfg.OnBoundary(ctx, b, root)
}

// nextBoundary returns the first boundary above size, or 0.
func (l *Ledger) nextBoundary(size uint64) uint64 {
	var b uint64
	l.view(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketBoundaries).Cursor().Seek(u64(size + 1))
		if k != nil {
			b = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return b
}

// boundaryAtOrBelow returns the last boundary at or below size, or 0.
func (l *Ledger) boundaryAtOrBelow(size uint64) uint64 {
	var b uint64
	l.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketBoundaries).Cursor()
		k, _ := c.Seek(u64(size + 1))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		if k != nil {
			b = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return b
}

func (l *Ledger) view(fn func(tx *bbolt.Tx) error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.st.db.View(fn)
}

// Changed returns a channel that is closed the next time the tree grows.
func (l *Ledger) Changed() <-chan struct{} {
	l.changeMu.Lock()
	defer l.changeMu.Unlock()
	return l.changed
}

func (l *Ledger) notifyChanged() {
	l.changeMu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.changeMu.Unlock()
}

// WaitTreeSize blocks until the node's tree has at least size leaves or ctx ends.
func (l *Ledger) WaitTreeSize(ctx context.Context, size uint64) error {
	for {
		ch := l.Changed()
		if l.integrated.Load() >= size {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
