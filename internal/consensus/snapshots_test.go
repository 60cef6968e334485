package consensus

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// stateSM is a state machine whose state is a byte string, for the snapshot store's tests.
type stateSM struct {
	state   []byte
	applied uint64
}

func (s *stateSM) Apply(cmds []Command) []any { return make([]any, len(cmds)) }
func (s *stateSM) AppliedIndex() uint64       { return s.applied }
func (s *stateSM) ReadState() (io.ReadCloser, int64, error) {
	return io.NopCloser(bytes.NewReader(s.state)), int64(len(s.state)), nil
}

// Restore takes a state read whole without an error, as the ledger does (it writes the
// snapshot beside its state and renames it over only once it is whole and checked).
func (s *stateSM) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.state = b
	return nil
}

func newTestStore(t *testing.T, sm StateMachine) *snapshotStore {
	t.Helper()
	s, err := newSnapshotStore(t.TempDir(), 2, sm, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testConfig = raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: "n1", Address: "n1"}}}

// takeSnapshot records a snapshot this member takes, as raft does: Create, the fsm's Persist.
func takeSnapshot(t *testing.T, s *snapshotStore, index, applied uint64) string {
	t.Helper()
	sink, err := s.Create(1, index, 1, testConfig, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&snapshot{applied: applied}).Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

// receiveSnapshot stores a snapshot the leader sends, as raft's installSnapshot does.
func receiveSnapshot(t *testing.T, s *snapshotStore, index uint64, state []byte) string {
	t.Helper()
	sink, err := s.Create(1, index, 2, testConfig, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(sink, bytes.NewReader(state)); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

func readAll(t *testing.T, s *snapshotStore, id string) (*raft.SnapshotMeta, []byte, error) {
	t.Helper()
	meta, rc, err := s.Open(id)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return meta, b, err
}

// A snapshot this member takes copies nothing: meta.json alone, held by the state. Opened (to
// send to a member the log no longer reaches) it reads the state as it is then, and says how
// long that is.
func TestSnapshotTakenHereIsHeldByTheState(t *testing.T) {
	sm := &stateSM{state: []byte("state at 10"), applied: 10}
	s := newTestStore(t, sm)
	id := takeSnapshot(t, s, 12, 10)
	ents, err := os.ReadDir(filepath.Join(s.dir, id))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != snapshotMetaFile {
		t.Fatalf("a snapshot taken here holds %v, want meta.json alone", ents)
	}
	list, err := s.list()
	if err != nil || len(list) != 1 || !list[0].Held || list[0].StateApplied != 10 || list[0].Index != 12 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	sm.state, sm.applied = []byte("state at 20, after the snapshot"), 20
	meta, got, err := readAll(t, s, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "state at 20, after the snapshot" || meta.Size != int64(len(got)) || meta.Index != 12 {
		t.Fatalf("opened %q (size %d, index %d)", got, meta.Size, meta.Index)
	}
	// While raft starts from a local snapshot because the state is behind, a held one is not a
	// source: restoring the state from itself would skip what it lacks.
	s.restoring.Store(true)
	if _, _, err := s.Open(id); err == nil || !strings.Contains(err.Error(), "held by the state") {
		t.Fatalf("opened a held snapshot to restore from: %v", err)
	}
}

// A snapshot the leader sends is a file until the state machine restores it; then it is held,
// and the file goes. Reading it back checks its length and CRC.
func TestReceivedSnapshotIsHeldOnceRestored(t *testing.T) {
	sm := &stateSM{}
	s := newTestStore(t, sm)
	leader := bytes.Repeat([]byte("leader's state "), 100000)
	id := receiveSnapshot(t, s, 50, leader)
	meta, got, err := readAll(t, s, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, leader) || meta.Size != int64(len(leader)) {
		t.Fatalf("read back %d bytes (size %d), want the %d received", len(got), meta.Size, len(leader))
	}
	f := &fsm{sm: sm, snaps: s}
	_, rc, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sm.state, leader) {
		t.Fatal("the restored state is not the leader's")
	}
	// The restored state's applied index (0 here) is below the snapshot's: only entries that are
	// not commands lie between. The snapshot just restored is held all the same.
	list, _ := s.list()
	if len(list) != 1 || !list[0].Held {
		t.Fatalf("after the restore: %+v", list)
	}
	if _, err := os.Stat(filepath.Join(s.dir, id, snapshotStateFile)); !os.IsNotExist(err) {
		t.Fatalf("state.bin kept after the restore: %v", err)
	}
}

func TestDamagedReceivedSnapshotFailsToRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
		want   string
	}{
		{"a byte flipped", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 1
			return os.WriteFile(p, b, 0o600)
		}, "CRC"},
		{"cut short", func(p string) error { return os.Truncate(p, 1000) }, "short"},
		{"grown", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("more"))
			return err
		}, "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, &stateSM{})
			id := receiveSnapshot(t, s, 50, bytes.Repeat([]byte("x"), 5000))
			if err := tc.damage(filepath.Join(s.dir, id, snapshotStateFile)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := readAll(t, s, id); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("read a damaged snapshot: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// A received snapshot the state machine cannot restore (here damaged on disk: the read fails
// at its end) is removed; the state is unchanged.
func TestRefusedSnapshotIsRemoved(t *testing.T) {
	sm := &stateSM{state: []byte("mine"), applied: 7}
	s := newTestStore(t, sm)
	id := receiveSnapshot(t, s, 50, bytes.Repeat([]byte("leader "), 1000))
	path := filepath.Join(s.dir, id, snapshotStateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[10] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, rc, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	f := &fsm{sm: sm, snaps: s}
	if err := f.Restore(rc); err == nil {
		t.Fatal("restored a damaged snapshot")
	}
	if string(sm.state) != "mine" {
		t.Fatalf("the refused snapshot changed the state to %q", sm.state)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("the refused snapshot is kept: %v", list)
	}
}

// Snapshots raft's own file store wrote (each a copy of the state, as earlier versions kept
// them) read as received ones; at start those the state holds become held and their copies go.
func TestSnapshotsFromRaftsFileStore(t *testing.T) {
	base := t.TempDir()
	fs, err := raft.NewFileSnapshotStoreWithLogger(base, 2, HCLog(slog.New(slog.DiscardHandler), "raft"))
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("n1")
	var ids []string
	for _, idx := range []uint64{30, 60} {
		sink, err := fs.Create(1, idx, 1, testConfig, 1, trans)
		if err != nil {
			t.Fatal(err)
		}
		sink.Write([]byte("copy of the state at " + string(rune('0'+idx/30))))
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sink.ID())
	}
	sm := &stateSM{applied: 45}
	s, err := newSnapshotStore(base, 2, sm, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Index != 60 || list[1].Index != 30 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if _, got, err := readAll(t, s, ids[1]); err != nil || string(got) != "copy of the state at 2" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := s.heldUpTo(sm.applied); err != nil {
		t.Fatal(err)
	}
	metas, _ := s.list()
	if metas[0].Held || !metas[1].Held || metas[1].StateApplied != 45 {
		t.Fatalf("after heldUpTo(45): %+v %+v", metas[0], metas[1])
	}
	if _, err := os.Stat(filepath.Join(s.dir, ids[0], snapshotStateFile)); !os.IsNotExist(err) {
		t.Fatalf("the copy the state holds is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, ids[1], snapshotStateFile)); err != nil {
		t.Fatalf("the copy ahead of the state is gone: %v", err)
	}
}

// The store keeps the newest two snapshots.
func TestSnapshotStoreKeepsTheNewestTwo(t *testing.T) {
	s := newTestStore(t, &stateSM{})
	for i := range uint64(4) {
		takeSnapshot(t, s, 10*(i+1), 10*(i+1))
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Index != 40 || list[1].Index != 30 {
		t.Fatalf("kept %v, %v", list, err)
	}
}

// fileSM takes a snapshot the leader sent as its file, moving it, as the ledger does.
type fileSM struct {
	*stateSM
	took string
}

func (s *fileSM) RestoreFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s.took = path + ".taken"
	if err := os.Rename(path, s.took); err != nil {
		return err
	}
	s.state = b
	return nil
}

// A state machine that takes files is given the stored file itself, once it has been read
// through and found to be what was received; a damaged one is refused before it is handed over.
func TestReceivedSnapshotRestoredFromItsFile(t *testing.T) {
	leader := bytes.Repeat([]byte("leader's state "), 10000)
	for _, damaged := range []bool{false, true} {
		sm := &fileSM{stateSM: &stateSM{state: []byte("mine")}}
		s := newTestStore(t, sm)
		id := receiveSnapshot(t, s, 50, leader)
		path := filepath.Join(s.dir, id, snapshotStateFile)
		if damaged {
			b, _ := os.ReadFile(path)
			b[len(b)-1] ^= 1
			os.WriteFile(path, b, 0o600)
		}
		_, rc, err := s.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		err = (&fsm{sm: sm, snaps: s}).Restore(rc)
		list, _ := s.list()
		switch {
		case damaged && (err == nil || sm.took != "" || string(sm.state) != "mine" || len(list) != 0):
			t.Fatalf("damaged: err %v, file taken %q, state %q, snapshots kept %d", err, sm.took, sm.state, len(list))
		case !damaged && (err != nil || sm.took != path+".taken" || !bytes.Equal(sm.state, leader) || len(list) != 1 || !list[0].Held):
			t.Fatalf("err %v, file taken %q, state %d bytes, snapshots %+v", err, sm.took, len(sm.state), list)
		}
	}
}
