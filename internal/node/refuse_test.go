package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A node whose stored witness state disagrees with its tree (as after a rewritten history) must
// refuse to cosign, say why, and its cosignature must not appear on anything published after.
func TestNodeRefusesToCosignAgainstItsStoredState(t *testing.T) {
	var logs syncBuffer
	tn := newTestNet(t, 3, func(c *Config) {
		if c.Name == "node3" {
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}
	})
	tn.leader()
	s := newSigner(t)
	for i := range 20 {
		if code, out := post(t, tn.members[i%3].url(), s.body(fmt.Appendf(nil, `{"i":%d}`, i))); code != http.StatusCreated {
			t.Fatalf("submit: %d %v", code, out)
		}
	}
	cp, _ := tn.waitCheckpoint(tn.members[0], 20)

	// Stop node3 and make its witness state claim it cosigned another root at that size.
	m3 := tn.members[2]
	tn.stop(m3)
	db, err := bbolt.Open(filepath.Join(m3.dir, "witness.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := append(binary.BigEndian.AppendUint64(nil, cp.Size), bytes.Repeat([]byte{7}, 32)...)
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("witness/state")).Put([]byte(testOrigin), forged) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	tn.start(m3)
	tn.leader() // node3 may have led: wait for the new election

	for i := 20; i < 30; i++ {
		for attempt := 0; ; attempt++ {
			code, out := post(t, tn.members[0].url(), s.body(fmt.Appendf(nil, `{"i":%d}`, i)))
			if code == http.StatusCreated {
				break
			}
			if code != http.StatusServiceUnavailable || attempt > 100 {
				t.Fatalf("submit after restart: %d %v", code, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logs.String(), "refusing to cosign") {
		if time.Now().After(deadline) {
			t.Fatalf("node3 did not refuse; its log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "inconsistent with the last cosigned checkpoint") {
		t.Fatalf("node3 refused without saying why:\n%s", logs.String())
	}
	// With quorum 3 of 3, nothing newer can be published without node3: the network stalls
	// rather than publish what a member will not vouch for.
	for _, m := range tn.members {
		body, size := m.node.collector.published()
		if size > cp.Size {
			t.Fatalf("%s published size %d without node3's cosignature:\n%s", m.name, size, body)
		}
	}
}

// A start that fails part-way (here: the HTTP address is taken) returns the error, and releases
// what it had opened: the same data directory starts cleanly right after.
func TestFailedStartReleasesItsState(t *testing.T) {
	tn := newTestNet(t, 1, nil)
	m := tn.members[0]
	cfg := tn.config(m)
	tn.stop(m)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPListener, cfg.HTTPAddr = nil, busy.Addr().String()
	if n, err := New(context.Background(), cfg); err == nil || n != nil {
		t.Fatalf("New on a busy HTTP address: %v, %v", n, err)
	}
	busy.Close()
	tn.start(m)
	tn.leader()
	// Shutting down twice (a signal and a deferred close, say) is harmless.
	for range 2 {
		if err := m.node.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// A node that restarts on a quiet network (no new entries, so no new checkpoint) publishes the
// newest checkpoint again: the others re-push their cosignatures, which it lost with its memory.
func TestRestartedNodePublishesOnAQuietNetwork(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.leader()
	s := newSigner(t)
	if code, out := post(t, tn.members[0].url(), s.body([]byte(`{"quiet":1}`))); code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, out)
	}
	m := tn.members[2]
	tn.waitCheckpoint(m, 1)
	time.Sleep(200 * time.Millisecond) // the others' pushes to m have gone through
	tn.stop(m)
	tn.start(m)
	tn.waitCheckpoint(m, 1)
}
