package ledger

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/witnessnet/witnessnet/internal/ledger/boltstore"
)

// Two replicas that apply the same commands end with the same log and tree, whatever else
// differs between them: one applies each raft batch in one call, the other command by command,
// indexing at other times and in other step sizes, and restarting now and then, half of those
// times after the first of an index step's two transactions only (as a crash between them
// leaves it). A third of the records resubmit an earlier envelope, which both must find
// wherever its identity is (the index runs, the entries not indexed yet, the same batch).
func TestReplicasAgreeAcrossBatchingIndexingAndRestarts(t *testing.T) {
	for seed := uint64(1); seed <= 2; seed++ {
		replicasAgree(t, seed, 150)
	}
}

func replicasAgree(t *testing.T, seed uint64, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	open := func(name string) *Ledger {
		l, err := Open(ctx, Config{Path: filepath.Join(dir, name)})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := open("a.db"), open("b.db")
	defer func() { a.Close(); b.Close() }()
	src := &commandStream{rng: rng, maxRecords: 300, record: func(i int) []byte {
		env := testEnvelope(i)
		leaf, _, _ := NewLeaf(env, "", nil)
		r, _ := (&Record{Identity: IdentityOf(env), Leaf: leaf, Terms: []string{Term(TermType, "x"), Term("key", fmt.Sprint(i%5))}}).MarshalBinary()
		return r
	}}
	for step := range steps {
		cmds := src.batch()
		a.Apply(cmds)
		for _, c := range cmds {
			b.Apply([]Command{c})
			if rng.IntN(3) == 0 {
				if _, err := b.indexStep(1 + rng.IntN(2*indexBatch)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if rng.IntN(5) == 0 {
			if _, err := a.indexStep(indexBatch); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(25) == 0 {
			if rng.IntN(2) == 0 {
				indexIdentitiesOnly(t, b)
			}
			b.Close()
			b = open("b.db")
		}
		if a.Size() != uint64(src.distinct) || b.Size() != uint64(src.distinct) || a.TreeSize() != b.TreeSize() {
			t.Fatalf("seed %d step %d: %d distinct entries; sizes %d and %d, trees %d and %d", seed, step, src.distinct, a.Size(), b.Size(), a.TreeSize(), b.TreeSize())
		}
		ra, errA := a.RootAt(ctx, a.TreeSize())
		rb, errB := b.RootAt(ctx, b.TreeSize())
		if errA != nil || errB != nil || !bytes.Equal(ra, rb) {
			t.Fatalf("seed %d step %d: roots at %d: %x (%v) and %x (%v)", seed, step, a.TreeSize(), ra, errA, rb, errB)
		}
	}
}

// indexIdentitiesOnly does the first of an index step's two transactions (identities), as a
// crash between them leaves the file.
func indexIdentitiesOnly(t *testing.T, l *Ledger) {
	t.Helper()
	st := l.st
	err := st.db.Update(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		from := getU64(m.Get(keyIndexed))
		to, err := termsEnd(tx, from, min(getU64(m.Get(keyNext)), from+indexBatch))
		if err != nil || to <= from {
			return err
		}
		return boltstore.IndexLeavesTx(tx, st.tree.TreeId, int64(from), int64(to), boltstore.IndexIdentities)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Replicas agree while everything that runs beside Apply in a node runs beside it: the
// sequencer, index steps from another goroutine at any time, readers, snapshots streamed while
// commands apply. The second replica is now and then replaced by a snapshot of the first taken
// while the first was applying (as raft installs one on a follower that fell behind), then given
// the commands after the snapshot's applied index again, and restarted now and then. Run it with
// -race as well.
func TestReplicasAgreeWhileRunning(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seedWhileRunning, 11))
	dir := t.TempDir()
	open := func(name string) *Ledger {
		l, err := Open(ctx, Config{Path: filepath.Join(dir, name)})
		if err != nil {
			t.Fatal(err)
		}
		l.Start()
		return l
	}
	a := open("a.db")
	var bMu sync.RWMutex // held to swap b
	b := open("b.db")
	defer func() { a.Close(); b.Close() }()
	src := &commandStream{rng: rng, maxRecords: 120, record: func(i int) []byte {
		env := testEnvelope(i)
		leaf, _, _ := NewLeaf(env, "", nil)
		r, _ := (&Record{Identity: IdentityOf(env), Leaf: leaf, Terms: []string{Term(TermType, "x")}}).MarshalBinary()
		return r
	}}

	stop := make(chan struct{})
	var bg sync.WaitGroup
	run := func(fn func(r *rand.Rand)) {
		bg.Add(1)
		r := rand.New(rand.NewPCG(rng.Uint64(), 1))
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				fn(r)
			}
		}()
	}
	run(func(r *rand.Rand) { // index steps, as the sequencer takes them, at any time
		bMu.RLock()
		l := b
		if r.IntN(2) == 0 {
			l = a
		}
		if _, err := l.indexStep(1 + r.IntN(600)); err != nil {
			t.Errorf("index step: %v", err)
		}
		bMu.RUnlock()
		time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
	})
	run(func(r *rand.Rand) { // readers
		bMu.RLock()
		for _, l := range []*Ledger{a, b} {
			ids := []Identity{IdentityOf(testEnvelope(r.IntN(5000)))}
			if _, err := l.LookupAll(ids); err != nil {
				t.Errorf("lookup: %v", err)
			}
			if _, err := l.Search(Term(TermType, "x"), uint64(r.IntN(3000)), 10); err != nil {
				t.Errorf("search: %v", err)
			}
			if size := l.TreeSize(); size > 0 {
				if _, err := l.RootAt(ctx, 1+uint64(r.IntN(int(size)))); err != nil {
					t.Errorf("root: %v", err)
				}
			}
		}
		bMu.RUnlock()
	})

	var all []Command
	var snap []byte
	snapDone := make(chan error, 1)
	snapping := false
	for step := range stepsWhileRunning {
		cmds := src.batch()
		all = append(all, cmds...)
		if !snapping && rng.IntN(8) == 0 {
			// A snapshot streamed while the next commands apply: it holds some state at or after
			// this point, and says which by its applied index.
			snapping = true
			go func() {
				var err error
				snap, err = readState(a)
				snapDone <- err
			}()
		}
		a.Apply(cmds)
		bMu.RLock()
		for _, c := range cmds {
			b.Apply([]Command{c})
		}
		bMu.RUnlock()
		if snapping && rng.IntN(2) == 0 {
			if err := <-snapDone; err != nil {
				t.Fatal(err)
			}
			snapping = false
			bMu.Lock()
			if err := b.Restore(bytes.NewReader(snap)); err != nil {
				t.Fatal(err)
			}
			from := b.AppliedIndex()
			for _, c := range all {
				if c.Index > from {
					b.Apply([]Command{c})
				}
			}
			bMu.Unlock()
		}
		if rng.IntN(20) == 0 {
			bMu.Lock()
			b.Close()
			b = open("b.db")
			bMu.Unlock()
		}
		bMu.RLock()
		sa, sb := a.TreeSize(), b.TreeSize()
		ra, errA := a.RootAt(ctx, sa)
		rb, errB := b.RootAt(ctx, sb)
		bMu.RUnlock()
		if a.Size() != uint64(src.distinct) || sa != sb || errA != nil || errB != nil || !bytes.Equal(ra, rb) {
			t.Fatalf("step %d: %d distinct entries; sizes %d and %d; roots at %d and %d: %x (%v) and %x (%v)", step, src.distinct, a.Size(), b.Size(), sa, sb, ra, errA, rb, errB)
		}
	}
	close(stop)
	bg.Wait()
	if snapping {
		<-snapDone
	}
}

// The seed and length of TestReplicasAgreeWhileRunning, variables so that a longer run can be
// had by changing them here.
var (
	seedWhileRunning  uint64 = 3
	stepsWhileRunning        = 120
)

// testEnvelope is envelope i of the replica tests.
func testEnvelope(i int) []byte {
	return fmt.Appendf(nil, `{"payloadType":"t","payload":"%d","signatures":[{"keyid":"k","sig":""}]}`, i)
}

// commandStream makes the replica tests' raft batches: 1 to 3 commands each, a tenth of them
// boundaries, the others 1 to maxRecords records of which a third resubmit an earlier envelope.
type commandStream struct {
	rng        *rand.Rand
	maxRecords int
	record     func(i int) []byte // the record of envelope i
	index      uint64             // raft index of the last command made
	distinct   int                // distinct envelopes made so far
}

func (s *commandStream) batch() []Command {
	var cmds []Command
	for range 1 + s.rng.IntN(3) {
		s.index++
		c := Command{Index: s.index, Kind: KindEntries, Stamp: time.Unix(int64(s.index), 0)}
		if s.rng.IntN(10) == 0 {
			c.Kind = KindBoundary
			cmds = append(cmds, c)
			continue
		}
		for range 1 + s.rng.IntN(s.maxRecords) {
			if s.distinct > 0 && s.rng.IntN(3) == 0 {
				c.Records = append(c.Records, s.record(s.rng.IntN(s.distinct)))
			} else {
				c.Records = append(c.Records, s.record(s.distinct))
				s.distinct++
			}
		}
		cmds = append(cmds, c)
	}
	return cmds
}
