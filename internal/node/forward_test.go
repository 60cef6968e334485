package node

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// observedLeader is a replicator that only knows the leader and reports its changes when told to.
type observedLeader struct {
	replicator // nil: callLeader needs only the method below
	mu         sync.Mutex
	leader     string
	moved      chan struct{}
}

func (o *observedLeader) LeaderChanged() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.leader, o.moved
}

// change makes another member the leader.
func (o *observedLeader) change(leader string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.leader = leader
	close(o.moved)
	o.moved = make(chan struct{})
}

// A call to the leader is abandoned when another member comes to lead while it is in flight, and
// stands otherwise. (That a report of the leader already known closes nothing is
// consensus.TestLeaderChangedIgnoresKnownLeader.)
func TestCallLeaderOnChange(t *testing.T) {
	for _, c := range []struct {
		name      string
		change    bool
		abandoned bool
	}{
		{"the leader stays", false, false},
		{"another leader", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			arrived, answer := make(chan struct{}), make(chan struct{})
			leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(arrived)
				select {
				case <-answer:
					w.Write([]byte(`{"ok":true}`))
				case <-r.Context().Done():
				}
			}))
			defer leader.Close()
			_, priv, err := ed25519.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			o := &observedLeader{leader: "node2", moved: make(chan struct{})}
			n := &Node{cfg: Config{Name: "node1", WitnessKey: priv}, raft: o, client: leader.Client(),
				peers: map[string]Peer{"node2": {Name: "node2", URL: leader.URL}}}
			done := make(chan error, 1)
			go func() {
				var out struct{ OK bool }
				err := n.callLeader(context.Background(), "/v1/internal/test", "test", []byte("{}"), &out)
				if err == nil && !out.OK {
					t.Error("the leader's answer was not decoded")
				}
				done <- err
			}()
			<-arrived
			if c.change {
				o.change("node3")
			}
			// Time for the call to act on the change before the leader answers.
			time.Sleep(50 * time.Millisecond)
			close(answer)
			err = <-done
			if abandoned := err != nil; abandoned != c.abandoned {
				t.Fatalf("abandoned %v (%v), want %v", abandoned, err, c.abandoned)
			}
		})
	}
}
