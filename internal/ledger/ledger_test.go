package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"go.etcd.io/bbolt"
)

func openTest(t *testing.T, path string, hook func(context.Context, uint64, []byte)) *Ledger {
	t.Helper()
	l, err := Open(context.Background(), Config{Path: path, OnBoundary: hook})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(func() { l.Close() })
	return l
}

func record(t testing.TB, i int) []byte {
	env := []byte(fmt.Sprintf(`{"payloadType":"t","payload":"%d","signatures":[]}`, i))
	leaf, blob, err := NewLeaf(env, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&Record{Identity: IdentityOf(env), Leaf: leaf, Blob: blob}).MarshalBinary()
	return b
}

func entries(t testing.TB, raftIndex uint64, from, n int) Command {
	c := Command{Index: raftIndex, Kind: KindEntries, Stamp: time.Unix(1700000000, 0)}
	for i := from; i < from+n; i++ {
		c.Records = append(c.Records, record(t, i))
	}
	return c
}

// wantRoot computes the RFC 6962 root over the leaves directly.
func wantRoot(t testing.TB, n int) []byte {
	r := rangeFactory.NewEmptyRange(0)
	for i := range n {
		var rec Record
		if err := rec.UnmarshalBinary(record(t, i)); err != nil {
			t.Fatal(err)
		}
		r.Append(rfc6962.DefaultHasher.HashLeaf(rec.Leaf), nil)
	}
	h, _ := r.GetRootHash(nil)
	return h
}

func waitSize(t *testing.T, l *Ledger, n uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.WaitTreeSize(ctx, n); err != nil {
		t.Fatalf("tree size %d not reached (at %d): %v", n, l.TreeSize(), err)
	}
}

func TestApplyIntegratesAndDeduplicates(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "state.db"), nil)
	res := l.Apply([]Command{entries(t, 1, 0, 100), entries(t, 2, 50, 100)})
	if res[0][99].Index != 99 || res[1][0].Index != 50 || !res[1][0].Duplicate || res[1][99].Index != 149 {
		t.Fatalf("unexpected results: %+v %+v %+v", res[0][99], res[1][0], res[1][99])
	}
	waitSize(t, l, 150)
	size, root, err := l.Root(context.Background())
	if err != nil || size != 150 || !bytes.Equal(root, wantRoot(t, 150)) {
		t.Fatalf("root: size %d err %v", size, err)
	}
	// A replayed command (raft index already applied) changes nothing.
	again := l.Apply([]Command{entries(t, 2, 1000, 5)})
	if again[0] != nil || l.Size() != 150 {
		t.Fatalf("replay applied: %v size %d", again[0], l.Size())
	}
	// A record repeated within one command is a duplicate of its first copy.
	rep := entries(t, 3, 300, 1)
	rep.Records = append(rep.Records, rep.Records[0], record(t, 301))
	if r := l.Apply([]Command{rep}); r[0][0].Index != 150 || r[0][0].Duplicate || r[0][1].Index != 150 || !r[0][1].Duplicate || r[0][2].Index != 151 {
		t.Fatalf("repeated within a command: %+v", r[0])
	}
	if idx, err := l.Lookup(IdentityOf(fmt.Appendf(nil, `{"payloadType":"t","payload":"%d","signatures":[]}`, 300))); err != nil || idx != 150 {
		t.Fatalf("lookup of the repeated record: %d %v", idx, err)
	}
	// A malformed record is rejected deterministically, the rest of the batch goes on.
	c := entries(t, 4, 200, 2)
	c.Records = append([][]byte{[]byte("garbage")}, c.Records...)
	r := l.Apply([]Command{c})
	if r[0][0].Err == nil || r[0][1].Index != 152 || r[0][2].Index != 153 {
		t.Fatalf("malformed: %+v", r[0])
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	l, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	l.Apply([]Command{entries(t, 7, 0, 300)})
	waitSize(t, l, 300)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, path, nil)
	if l.AppliedIndex() != 7 || l.Size() != 300 || l.TreeSize() != 300 {
		t.Fatalf("after restart: applied %d size %d tree %d", l.AppliedIndex(), l.Size(), l.TreeSize())
	}
	var rec Record
	_ = rec.UnmarshalBinary(record(t, 12))
	if idx, err := l.Lookup(rec.Identity); err != nil || idx != 12 {
		t.Fatalf("lookup after restart: %d %v", idx, err)
	}
	l.Apply([]Command{entries(t, 8, 300, 10)})
	waitSize(t, l, 310)
	_, root, _ := l.Root(context.Background())
	if !bytes.Equal(root, wantRoot(t, 310)) {
		t.Fatal("root after restart and more entries is wrong")
	}
}

func TestBoundariesStopIntegrationAndProofsVerify(t *testing.T) {
	var mu sync.Mutex
	seen := map[uint64][]byte{}
	hook := func(_ context.Context, size uint64, root []byte) {
		mu.Lock()
		seen[size] = root
		mu.Unlock()
	}
	l := openTest(t, filepath.Join(t.TempDir(), "state.db"), hook)
	l.Apply([]Command{entries(t, 1, 0, 10), {Index: 2, Kind: KindBoundary}, entries(t, 3, 10, 20), {Index: 4, Kind: KindBoundary}, {Index: 5, Kind: KindBoundary}})
	waitSize(t, l, 30)
	// The sequencer announces a boundary just after the tree reaches it.
	var got map[uint64][]byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		got = maps.Clone(seen)
		mu.Unlock()
		if len(got) >= 2 {
			break
		}
	}
	if len(got) != 2 || !bytes.Equal(got[10], wantRoot(t, 10)) || !bytes.Equal(got[30], wantRoot(t, 30)) {
		t.Fatalf("boundaries seen: %d", len(got))
	}
	ctx := context.Background()
	root30 := wantRoot(t, 30)
	for _, idx := range []uint64{0, 9, 17, 29} {
		p, err := l.InclusionProof(ctx, idx, 30)
		if err != nil {
			t.Fatal(err)
		}
		var rec Record
		_ = rec.UnmarshalBinary(record(t, int(idx)))
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, 30, rfc6962.DefaultHasher.HashLeaf(rec.Leaf), p, root30); err != nil {
			t.Fatalf("inclusion %d: %v", idx, err)
		}
	}
	p, err := l.ConsistencyProof(ctx, 10, 30)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 10, 30, p, wantRoot(t, 10), root30); err != nil {
		t.Fatal(err)
	}
	if r, _ := l.RootAt(ctx, 17); !bytes.Equal(r, wantRoot(t, 17)) {
		t.Fatal("RootAt(17) wrong")
	}
	if _, err := l.InclusionProof(ctx, 3, 31); err == nil {
		t.Fatal("proof beyond the tree was served")
	}
}

func TestTilesAndBundles(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "state.db"), nil)
	l.Apply([]Command{entries(t, 1, 0, 600)})
	waitSize(t, l, 600)
	ctx := context.Background()
	tile, err := l.HashTile(ctx, 0, 1, 256)
	if err != nil || len(tile) != 256*32 {
		t.Fatalf("tile 0/1: %d bytes, %v", len(tile), err)
	}
	var rec Record
	_ = rec.UnmarshalBinary(record(t, 256))
	if !bytes.Equal(tile[:32], rfc6962.DefaultHasher.HashLeaf(rec.Leaf)) {
		t.Fatal("tile 0/1 does not start with the hash of leaf 256")
	}
	if _, err := l.HashTile(ctx, 0, 2, 88); err != nil {
		t.Fatalf("partial tile: %v", err)
	}
	if _, err := l.HashTile(ctx, 0, 2, 89); err == nil {
		t.Fatal("tile beyond the tree was served")
	}
	lvl1, err := l.HashTile(ctx, 1, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := l.RootAt(ctx, 256)
	if !bytes.Equal(lvl1[:32], r) {
		t.Fatal("level-1 tile does not hold the root of the first 256 leaves")
	}
	bundle, err := l.EntryBundle(ctx, 2, 88)
	if err != nil {
		t.Fatal(err)
	}
	_ = rec.UnmarshalBinary(record(t, 512))
	if n := binary.BigEndian.Uint16(bundle); int(n) != len(rec.Leaf) || !bytes.Equal(bundle[2:2+n], rec.Leaf) {
		t.Fatal("entry bundle does not start with leaf 512")
	}
}

// readState reads the whole of ReadState and checks it was as long as it said.
func readState(l *Ledger) ([]byte, error) {
	rc, size, err := l.ReadState()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err == nil && int64(len(b)) != size {
		err = fmt.Errorf("ReadState said %d bytes and gave %d", size, len(b))
	}
	return b, err
}

func TestSnapshotRestore(t *testing.T) {
	dir := t.TempDir()
	src := openTest(t, filepath.Join(dir, "a.db"), nil)
	src.Apply([]Command{entries(t, 1, 0, 500), {Index: 2, Kind: KindBoundary}})
	waitSize(t, src, 500)
	state, err := readState(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := openTest(t, filepath.Join(dir, "b.db"), nil)
	dst.Apply([]Command{entries(t, 1, 9000, 3)})
	if err := dst.Restore(bytes.NewReader(state)); err != nil {
		t.Fatal(err)
	}
	if dst.AppliedIndex() != 2 || dst.Size() != 500 || dst.TreeSize() != 500 || dst.LastBoundary() != 500 {
		t.Fatalf("restored: applied %d size %d tree %d", dst.AppliedIndex(), dst.Size(), dst.TreeSize())
	}
	dst.Apply([]Command{entries(t, 3, 500, 10)})
	waitSize(t, dst, 510)
	_, root, _ := dst.Root(context.Background())
	if !bytes.Equal(root, wantRoot(t, 510)) {
		t.Fatal("root after restore is wrong")
	}
}

// A read of the state that its reader abandons part way (the member it was sent to went away)
// lets go of its transaction: commands go on applying and the ledger closes.
func TestReadStateAbandoned(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "state.db"), nil)
	l.Apply([]Command{entries(t, 1, 0, 200)})
	waitSize(t, l, 200)
	rc, size, err := l.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 4096)); err != nil || size <= 4096 {
		t.Fatalf("read 4096 of %d bytes: %v", size, err)
	}
	rc.Close()
	l.Apply([]Command{entries(t, 2, 200, 10)})
	waitSize(t, l, 210)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited on an abandoned read of the state")
	}
}

// Commands go on applying while the state is read for a member, also when state.db outgrows
// what bbolt mapped when it opened it: mapping again waits for every read transaction to end,
// and with a map of 256 MiB every Apply waited for the read from 256 MiB on (mmapSize).
func TestApplyGoesOnWhileTheStateIsRead(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 300 MiB")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	l := openTest(t, path, nil)
	pad := strings.Repeat("x", 1500)
	batch := func(raftIndex uint64, from int) Command {
		c := Command{Index: raftIndex, Kind: KindEntries, Stamp: time.Unix(1700000000, 0)}
		for i := from; i < from+1000; i++ {
			env := fmt.Appendf(nil, `{"payloadType":"t","payload":"%d%s","signatures":[]}`, i, pad)
			leaf, blob, err := NewLeaf(env, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := (&Record{Identity: IdentityOf(env), Leaf: leaf, Blob: blob}).MarshalBinary()
			c.Records = append(c.Records, b)
		}
		return c
	}
	l.Apply([]Command{batch(1, 0)})
	rc, _, err := l.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for i := 1; ; i++ {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 300<<20 {
			break
		}
		c := batch(uint64(i+1), i*1000)
		applied := make(chan struct{})
		go func() { l.Apply([]Command{c}); close(applied) }()
		select {
		case <-applied:
		case <-time.After(time.Minute):
			t.Fatalf("Apply waited a minute for a read of the state to end (state.db %d MiB)", fi.Size()>>20)
		}
	}
}

// A snapshot whose tree does not match its leaves (a leaf's bytes changed here) is refused, and
// the state it was to replace is unchanged.
func TestRestoreRefusesATamperedTree(t *testing.T) {
	dir := t.TempDir()
	src := openTest(t, filepath.Join(dir, "a.db"), nil)
	src.Apply([]Command{entries(t, 1, 0, 500)})
	waitSize(t, src, 500)
	state, err := readState(src)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(state, []byte(`"payload":"321"`))
	if at < 0 {
		t.Fatal("leaf 321 not found in the state's bytes")
	}
	state[at+len(`"payload":"3`)] = '4'
	dst := openTest(t, filepath.Join(dir, "b.db"), nil)
	dst.Apply([]Command{entries(t, 1, 9000, 3)})
	waitSize(t, dst, 3)
	_, before, _ := dst.Root(context.Background())
	if err := dst.Restore(bytes.NewReader(state)); !errors.Is(err, ErrTreeMismatch) {
		t.Fatalf("restored a tampered snapshot: %v, want ErrTreeMismatch", err)
	}
	_, after, err := dst.Root(context.Background())
	if err != nil || dst.AppliedIndex() != 1 || dst.Size() != 3 || !bytes.Equal(before, after) {
		t.Fatalf("the refused snapshot changed the state: applied %d, size %d, root changed %v, %v", dst.AppliedIndex(), dst.Size(), !bytes.Equal(before, after), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.db.restore")); !os.IsNotExist(err) {
		t.Fatalf("the refused snapshot is left beside the state: %v", err)
	}
	dst.Apply([]Command{entries(t, 2, 9003, 2)})
	waitSize(t, dst, 5)
}

func TestApplyPanicsOnFork(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "state.db"), nil)
	l.Apply([]Command{entries(t, 1, 0, 5)})
	// Rewind the ledger's counter as a corrupted store would; the next command lands on
	// occupied indexes with different leaves.
	l.next.Store(2)
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("a fork did not stop the ledger")
		}
	}()
	l.Apply([]Command{entries(t, 2, 100, 1)})
}

// The leader often marks a boundary after the node has integrated every entry before it: the
// boundary must still be announced.
func TestBoundaryAfterIntegrationIsAnnounced(t *testing.T) {
	got := make(chan uint64, 4)
	l := openTest(t, filepath.Join(t.TempDir(), "state.db"), func(_ context.Context, size uint64, _ []byte) { got <- size })
	l.Apply([]Command{entries(t, 1, 0, 10)})
	waitSize(t, l, 10)
	l.Apply([]Command{{Index: 2, Kind: KindBoundary}})
	select {
	case s := <-got:
		if s != 10 {
			t.Fatalf("announced %d, want 10", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("boundary at an integrated size was never announced")
	}
}

// Apply integrates what it applies in the same transaction: the tree covers every entry when
// Apply returns, with a root stored at each boundary. Roots are stamped with the commands' times,
// so replicas whose trees were created before those times store the same roots.
func TestApplyIntegratesInItsTransaction(t *testing.T) {
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	cmds := func() []Command {
		a, b := entries(t, 1, 0, 10), entries(t, 3, 10, 20)
		a.Stamp, b.Stamp = at, at.Add(-time.Hour) // a proposer whose clock is behind
		return []Command{a, {Index: 2, Kind: KindBoundary, Stamp: at}, b}
	}
	var roots [][]byte
	for range 2 {
		// Not started: the sequencer does not run.
		l, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "state.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		l.Apply(cmds())
		if l.TreeSize() != 30 || l.Size() != 30 {
			t.Fatalf("after Apply: tree %d of %d entries, want 30 of 30", l.TreeSize(), l.Size())
		}
		if _, root, err := l.Root(context.Background()); err != nil || !bytes.Equal(root, wantRoot(t, 30)) {
			t.Fatalf("root: %x, %v", root, err)
		}
		at10, err := l.st.logs.RootAt(l.st.tree.TreeId, 10)
		if err != nil || at10 == nil || !bytes.Equal(at10.RootHash, wantRoot(t, 10)) {
			t.Fatalf("root stored at the boundary: %+v, %v", at10, err)
		}
		if at10.TimestampNanos != uint64(at.UnixNano()) {
			t.Fatalf("root at the boundary stamped %d, want the command's %d", at10.TimestampNanos, at.UnixNano())
		}
		latest, err := l.st.latestRoot(context.Background())
		if err != nil || latest.TimestampNanos <= at10.TimestampNanos {
			t.Fatalf("latest root stamped %d after %d: roots must be stamped later and later (%v)", latest.TimestampNanos, at10.TimestampNanos, err)
		}
		raw, _ := latest.MarshalBinary()
		roots = append(roots, raw)
	}
	if !bytes.Equal(roots[0], roots[1]) {
		t.Fatal("two replicas applying the same commands stored different roots")
	}
}

// A state.db written before Apply integrated may hold entries applied but not integrated, and
// boundaries among them: the sequencer, or the next Apply, integrates them, storing a root at
// each boundary.
func TestSequencerIntegratesWhatApplyLeft(t *testing.T) {
	t.Run("sequencer", func(t *testing.T) { integrateLeftovers(t, false) })
	t.Run("apply", func(t *testing.T) { integrateLeftovers(t, true) })
}

func integrateLeftovers(t *testing.T, byApply bool) {
	path := filepath.Join(t.TempDir(), "state.db")
	l, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	err = l.st.db.Update(func(tx *bbolt.Tx) error {
		l.st.appending = &appending{from: 0, at: map[Identity]uint64{}}
		_, next, err := l.st.applyEntries(tx, 0, entries(t, 1, 0, 25))
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketBoundaries).Put(u64(10), nil); err != nil {
			return err
		}
		m := tx.Bucket(bucketMeta)
		if err := m.Put(keyNext, u64(next)); err != nil {
			return err
		}
		return m.Put(keyApplied, u64(1))
	})
	l.st.appending = nil
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := uint64(25)
	if byApply {
		if l, err = Open(context.Background(), Config{Path: path}); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		l.Apply([]Command{entries(t, 2, 25, 5)})
		want = 30
	} else {
		l = openTest(t, path, nil)
	}
	waitSize(t, l, want)
	if _, root, _ := l.Root(context.Background()); !bytes.Equal(root, wantRoot(t, int(want))) {
		t.Fatal("root of the entries integrated late is wrong")
	}
	at10, err := l.st.logs.RootAt(l.st.tree.TreeId, 10)
	if err != nil || at10 == nil || !bytes.Equal(at10.RootHash, wantRoot(t, 10)) {
		t.Fatalf("root stored at the boundary among them: %+v, %v", at10, err)
	}
}

// A new state.db has pageSize pages; one created with another page size keeps it and works.
func TestPageSize(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.db")
	db, err := bbolt.Open(old, 0o600, &bbolt.Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for path, want := range map[string]int{filepath.Join(dir, "new.db"): pageSize, old: 4096} {
		l := openTest(t, path, nil)
		if got := l.st.db.Info().PageSize; got != want {
			t.Errorf("%s: page size %d, want %d", filepath.Base(path), got, want)
		}
		l.Apply([]Command{entries(t, 1, 0, 40)})
		if _, root, _ := l.Root(context.Background()); !bytes.Equal(root, wantRoot(t, 40)) {
			t.Errorf("%s: wrong root", filepath.Base(path))
		}
	}
}
