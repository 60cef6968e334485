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
	replicator // nil: callLeader needs only the two methods below
	mu         sync.Mutex
	leader     string
	moved      chan struct{}
}

func (o *observedLeader) Leader() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.leader
}

func (o *observedLeader) LeaderChanged() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.moved
}

// observe reports the leader as raft's observer does: the leader first, then the channel.
func (o *observedLeader) observe(leader string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.leader = leader
	close(o.moved)
	o.moved = make(chan struct{})
}

// A call to the leader is abandoned when another member comes to lead while it is in flight, and
// not when the change reported is to the member called: an observation still queued when the
// call began, as on a member that has just learned of its leader, or a change and back.
func TestCallLeaderOnObservation(t *testing.T) {
	for _, c := range []struct {
		name, next string
		abandoned  bool
	}{
		{"the called leader observed again", "node2", false},
		{"another leader", "node3", true},
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
			o.observe(c.next)
			// Time for the call to act on the observation before the leader answers.
			time.Sleep(50 * time.Millisecond)
			close(answer)
			err = <-done
			if abandoned := err != nil; abandoned != c.abandoned {
				t.Fatalf("abandoned %v (%v), want %v", abandoned, err, c.abandoned)
			}
		})
	}
}
