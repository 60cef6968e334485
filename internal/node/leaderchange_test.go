//go:build linux

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/witnessnet/witnessnet/internal/ledger"
)

// blackhole returns the URL of a loopback address that neither accepts nor refuses a new
// connection, as the address of a host or container that is gone: its listener's queue is held
// full, so the kernel drops the SYNs of every further dial.
func blackhole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil || lerr != nil {
		t.Fatal(err, lerr)
	}
	held, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel took a connection past a full accept queue: no blackhole to test with")
	}
	return "http://" + ln.Addr().String()
}

// silentLeader starts three members and restarts one of them, f, believing that the leader l's
// HTTP API is at a silent address (blackhole); other is the third member.
func silentLeader(t *testing.T) (l, f, other *testMember) {
	hole := blackhole(t)
	tn := newTestNet(t, 3, nil)
	l, f = tn.follower()
	for _, m := range tn.members {
		if m != l && m != f {
			other = m
		}
	}
	tn.stop(f)
	tn.tune = func(c *Config) {
		if c.Name != f.name {
			return
		}
		for i := range c.Peers {
			if c.Peers[i].Name == l.name {
				c.Peers[i].URL = hole
			}
		}
	}
	tn.start(f)
	deadline := time.Now().Add(15 * time.Second)
	for f.node.raft.Leader() != l.name {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not know %s as its leader", f.name, l.name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return l, f, other
}

// forEachNewLeader runs test in two subtests, each on its own silentLeader network: leadership
// is to move to the third member, and to f, the member whose call (relaying or forwarding, as
// sender says) is under test.
func forEachNewLeader(t *testing.T, sender string, test func(t *testing.T, l, f, to *testMember)) {
	for _, toSender := range []bool{false, true} {
		name := "to another member"
		if toSender {
			name = "to the " + sender + " member"
		}
		t.Run(name, func(t *testing.T) {
			l, f, other := silentLeader(t)
			to := other
			if toSender {
				to = f
			}
			test(t, l, f, to)
		})
	}
}

// moveLeadership has l hand leadership to to, once the call under test has had a second to
// reach the silent address (whose dial would give up only after memberDial) and is still
// unanswered.
func moveLeadership[A any](t *testing.T, l, to *testMember, done <-chan A) {
	t.Helper()
	time.Sleep(time.Second)
	select {
	case a := <-done:
		t.Fatalf("answered before leadership moved: %+v", a)
	default:
	}
	r := l.node.raft.(raftReplicator).n.Raft()
	if err := r.LeadershipTransferToServer(raft.ServerID(to.name), raft.ServerAddress(to.raftAddr)).Error(); err != nil {
		t.Fatal(err)
	}
}

// A member relaying to a leader whose address has gone silent abandons the call as soon as it
// learns of another leader, and the submission is appended: relayed again to the new leader, or,
// when the relaying member is the new leader, admitted by it. Waiting out the dial instead would
// hold every submission queued behind the relay, and a member that came to lead and went on
// relaying would have no one to relay to until its propose timeout.
func TestRelayLeavesVanishedLeader(t *testing.T) {
	forEachNewLeader(t, "relaying", func(t *testing.T, l, f, to *testMember) {
		type answer struct {
			code int
			out  map[string]any
			err  error
		}
		body := newSigner(t).body([]byte(`{"n":"relayed"}`))
		done := make(chan answer, 1)
		go func() {
			c := &http.Client{Timeout: time.Minute}
			resp, err := c.Post(f.url()+"/v1/entries", "application/json", bytes.NewReader(body))
			if err != nil {
				done <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			done <- answer{code: resp.StatusCode, out: out}
		}()
		moveLeadership(t, l, to, done)
		a := <-done
		if a.err != nil || a.code != http.StatusCreated {
			t.Fatalf("after leadership moved to %s: %d %v %v; want 201", to.name, a.code, a.out, a.err)
		}
	})
}

// Records a member admitted and forwards (a threshold contribution, a membership change, or
// entries it admitted while it led) are proposed once leadership moves off a leader whose address
// went silent: forwarded to the new leader, or proposed by the member itself when it leads.
func TestForwardLeavesVanishedLeader(t *testing.T) {
	forEachNewLeader(t, "forwarding", func(t *testing.T, l, f, to *testMember) {
		adm, err := f.node.admit(newSigner(t).body([]byte(`{"n":"forwarded"}`)), nil)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := adm.rec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		type answer struct {
			res []ledger.Result
			err error
		}
		done := make(chan answer, 1)
		go func() {
			res, err := f.node.proposeNow(context.Background(), ledger.KindEntries, [][]byte{rec})
			done <- answer{res, err}
		}()
		moveLeadership(t, l, to, done)
		a := <-done
		if a.err != nil || len(a.res) != 1 || a.res[0].Err != nil {
			t.Fatalf("after leadership moved to %s: %d results, %v; want the record appended", to.name, len(a.res), a.err)
		}
		// The new leader answered once it had applied the record.
		if got, err := to.node.ledger.LookupAll([]ledger.Identity{adm.rec.Identity}); err != nil || len(got) != 1 || got[0] != int64(a.res[0].Index) {
			t.Fatalf("%s looks the record up at %v (%v), answered %d", to.name, got, err, a.res[0].Index)
		}
	})
}
