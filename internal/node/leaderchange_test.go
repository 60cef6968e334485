//go:build linux

package node

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
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

// A member relaying to a leader whose address has gone silent abandons the call as soon as it
// learns of another leader, and the submission is appended: relayed again to the new leader, or,
// when the relaying member is the new leader, admitted by it. Waiting out the dial instead would
// hold every submission queued behind the relay, and a member that came to lead and went on
// relaying would have no one to relay to until its propose timeout.
func TestRelayLeavesVanishedLeader(t *testing.T) {
	for _, toRelayer := range []bool{false, true} {
		name := "to another member"
		if toRelayer {
			name = "to the relaying member"
		}
		t.Run(name, func(t *testing.T) {
			hole := blackhole(t)
			tn := newTestNet(t, 3, nil)
			l, f := tn.follower()
			var other *testMember
			for _, m := range tn.members {
				if m != l && m != f {
					other = m
				}
			}
			// f is restarted believing that l's HTTP API is at the silent address.
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
			// The relay is dialling the silent address now; the dial would give up after
			// memberDial, long after the leader moves.
			time.Sleep(time.Second)
			select {
			case a := <-done:
				t.Fatalf("the submission was answered before leadership moved: %d %v %v", a.code, a.out, a.err)
			default:
			}
			to := other
			if toRelayer {
				to = f
			}
			r := l.node.raft.(raftReplicator).n.Raft()
			if err := r.LeadershipTransferToServer(raft.ServerID(to.name), raft.ServerAddress(to.raftAddr)).Error(); err != nil {
				t.Fatal(err)
			}
			a := <-done
			if a.err != nil || a.code != http.StatusCreated {
				t.Fatalf("after leadership moved to %s: %d %v %v; want 201", to.name, a.code, a.out, a.err)
			}
		})
	}
}
