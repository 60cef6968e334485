package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// listSM is a durable test state machine: an ordered list of records in bbolt, with the applied
// index in the same transaction, as the real ledger keeps it.
type listSM struct {
	mu       sync.RWMutex // guards db, which Restore swaps
	db       *bbolt.DB
	applied  atomic.Uint64
	applies  atomic.Int64 // commands applied since open
	restores atomic.Int64
}

var (
	bList = []byte("list")
	bMeta = []byte("meta")
)

func openList(t testing.TB, path string) *listSM {
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &listSM{db: db}
	s.db.Update(func(tx *bbolt.Tx) error {
		tx.CreateBucketIfNotExists(bList)
		m, _ := tx.CreateBucketIfNotExists(bMeta)
		if v := m.Get([]byte("applied")); v != nil {
			s.applied.Store(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return s
}

func (s *listSM) Apply(cmds []Command) []any {
	out := make([]any, len(cmds))
	s.mu.RLock()
	defer s.mu.RUnlock()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		l := tx.Bucket(bList)
		for i, c := range cmds {
			first := l.Stats().KeyN
			for _, r := range c.Records {
				seq, _ := l.NextSequence()
				if err := l.Put(binary.BigEndian.AppendUint64(nil, seq), r); err != nil {
					return err
				}
			}
			out[i] = first
			s.applied.Store(c.Index)
		}
		// Counted before the records are visible: a test that sees them sees the count too.
		s.applies.Add(int64(len(cmds)))
		return tx.Bucket(bMeta).Put([]byte("applied"), binary.BigEndian.AppendUint64(nil, s.applied.Load()))
	})
	if err != nil {
		panic(err)
	}
	return out
}

func (s *listSM) AppliedIndex() uint64 { return s.applied.Load() }

// ReadState reads the whole state into memory (the tests' states are small).
func (s *listSM) ReadState() (io.ReadCloser, int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var buf bytes.Buffer
	if err := s.db.View(func(tx *bbolt.Tx) error { _, err := tx.WriteTo(&buf); return err }); err != nil {
		return nil, 0, err
	}
	return io.NopCloser(&buf), int64(buf.Len()), nil
}

func (s *listSM) Restore(r io.Reader) error {
	s.restores.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.db.Path()
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	tmp := path + ".restore"
	if err := writeFile(tmp, data); err != nil {
		return err
	}
	s.db.Close()
	if err := rename(tmp, path); err != nil {
		return err
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	s.db = db
	return db.View(func(tx *bbolt.Tx) error {
		s.applied.Store(binary.BigEndian.Uint64(tx.Bucket(bMeta).Get([]byte("applied"))))
		return nil
	})
}

func (s *listSM) records() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bList).ForEach(func(_, v []byte) error { out = append(out, string(v)); return nil })
	})
	return out
}

type member struct {
	id    string
	dir   string
	trans *raft.InmemTransport
	wire  raft.Transport // what raft uses: trans itself or a fault-injecting wrapper
	sm    *listSM
	node  *Node
}

type cluster struct {
	t       *testing.T
	members []*member
	tune    func(*Config)
}

func newCluster(t *testing.T, n int, tune func(*Config)) *cluster {
	return newClusterWith(t, n, tune, nil)
}

// newClusterWith starts n members; wrap, if set, wraps each member's transport.
func newClusterWith(t *testing.T, n int, tune func(*Config), wrap func(*raft.InmemTransport) raft.Transport) *cluster {
	c := &cluster{t: t, tune: tune}
	base := t.TempDir()
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		m := &member{id: id, dir: filepath.Join(base, id), trans: tr, wire: tr}
		if wrap != nil {
			m.wire = wrap(tr)
		}
		c.members = append(c.members, m)
	}
	c.connectAll()
	for _, m := range c.members {
		c.start(m)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			if m.node != nil {
				m.node.Shutdown(context.Background())
				m.sm.db.Close()
			}
		}
	})
	return c
}

func (c *cluster) config(m *member) Config {
	var peers []Peer
	for _, o := range c.members {
		peers = append(peers, Peer{ID: o.id, Address: o.id})
	}
	cfg := Config{ID: m.id, Dir: m.dir, Transport: m.wire, Peers: peers,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 2 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

func (c *cluster) start(m *member) {
	c.t.Helper()
	m.sm = openList(c.t, filepath.Join(m.dir+".db"))
	n, err := New(context.Background(), c.config(m), m.sm)
	if err != nil {
		c.t.Fatal(err)
	}
	m.node = n
}

func (c *cluster) stop(m *member) {
	m.node.Shutdown(context.Background())
	m.node = nil
	m.sm.db.Close()
}

func (c *cluster) connectAll() {
	for _, a := range c.members {
		for _, b := range c.members {
			if a != b {
				a.trans.Connect(raft.ServerAddress(b.id), b.trans)
			}
		}
	}
}

// isolate cuts m off from every other member in both directions.
func (c *cluster) isolate(m *member) {
	for _, o := range c.members {
		if o != m {
			m.trans.Disconnect(raft.ServerAddress(o.id))
			o.trans.Disconnect(raft.ServerAddress(m.id))
		}
	}
}

// leader waits for a member (among those given, or all) that is ready to propose.
func (c *cluster) leader(among ...*member) *member {
	c.t.Helper()
	if len(among) == 0 {
		among = c.members
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range among {
			if m.node != nil && m.node.IsLeader() {
				return m
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("no leader elected")
	return nil
}

// followerOf returns the first member that is not l.
func (c *cluster) followerOf(l *member) *member {
	for _, m := range c.members {
		if m != l {
			return m
		}
	}
	c.t.Fatal("no follower")
	return nil
}

func (c *cluster) waitConverged(want int) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, m := range c.members {
			if m.node == nil || len(m.sm.records()) != want {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, m := range c.members {
		c.t.Logf("%s: %d records", m.id, len(m.sm.records()))
	}
	c.t.Fatalf("members did not converge on %d records", want)
}

func propose(t testing.TB, n *Node, rec string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := n.Propose(ctx, 1, [][]byte{[]byte(rec)})
	return err
}

// proposeRecords proposes the records prefix+from .. prefix+(to-1) one at a time, each committed
// before the next.
func proposeRecords(t testing.TB, n *Node, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := propose(t, n, fmt.Sprintf("%s%d", prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
}

func sameRecords(t *testing.T, c *cluster) {
	t.Helper()
	ref := c.members[0].sm.records()
	for _, m := range c.members[1:] {
		got := m.sm.records()
		if len(got) != len(ref) {
			t.Fatalf("%s has %d records, %s has %d", m.id, len(got), c.members[0].id, len(ref))
		}
		for i := range ref {
			if got[i] != ref[i] {
				t.Fatalf("%s differs at %d", m.id, i)
			}
		}
	}
}

func writeFile(path string, data []byte) error { return osWriteFile(path, data) }
