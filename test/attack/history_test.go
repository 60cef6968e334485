package attack

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/localnet/localnettest"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// waitQuorumCheckpoint polls url/checkpoint until it verifies under the policy at size >= size.
func waitQuorumCheckpoint(t *testing.T, policy *verify.Policy, url string, size uint64) ([]byte, *verify.Checkpoint) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, code := fetch(url + "/checkpoint"); code == http.StatusOK {
			if cp, _, err := policy.VerifyCheckpoint(b); err == nil && cp.Size >= size {
				return b, cp
			}
		}
	}
	t.Fatalf("%s: no quorum checkpoint of size >= %d", url, size)
	return nil, nil
}

func startNetwork(t *testing.T, n int) (*localnet.Network, *verify.Policy) {
	t.Helper()
	nw, _ := localnettest.Start(t, n)
	policy, err := verify.ParsePolicy(nw.Policy)
	if err != nil {
		t.Fatal(err)
	}
	return nw, policy
}

// TestRewrittenHistoryAfterRestart: every operator stops its node, deletes its data (raft log,
// tree, entries and the witness state that would forbid cosigning a fork) and starts again with
// the same keys, then the network logs a different history. That takes all members colluding,
// far beyond the trust model; a client that saw nothing before cannot tell. An auditor that kept
// its last verified checkpoint can: the new checkpoints are inconsistent with it, and the
// evidence file names every member that signed both histories.
func TestRewrittenHistoryAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw, policy := startNetwork(t, 4)
	s := newSubmitter()
	for i := range 5 {
		if code, err := s.submit(nw.URLs()[i%4], i); err != nil || code != http.StatusCreated {
			t.Fatalf("submit %d: %d %v", i, code, err)
		}
	}
	_, before := waitQuorumCheckpoint(t, policy, nw.URLs()[0], 5)
	state := t.TempDir()
	if _, err := client.Audit(client.AuditConfig{Servers: nw.URLs(), Policy: policy, StateDir: state}); err != nil {
		t.Fatalf("audit before the rewrite: %v", err)
	}

	for i := range nw.Members {
		if err := nw.Stop(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nw.Members {
		if err := os.RemoveAll(nw.DataDir(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nw.Members {
		if err := nw.Start(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nw.Leader(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if code, err := s.submit(nw.URLs()[i%4], 100+i); err != nil || code != http.StatusCreated {
			t.Fatalf("submit %d after the rewrite: %d %v", i, code, err)
		}
	}
	_, after := waitQuorumCheckpoint(t, policy, nw.URLs()[0], before.Size+1)

	rep, err := client.Audit(client.AuditConfig{Servers: nw.URLs(), Policy: policy, StateDir: state})
	if !errors.Is(err, client.ErrCheck) || rep == nil || len(rep.EvidenceFiles) == 0 {
		t.Fatalf("the audit accepted a rewritten history (size %d after %d): %v", after.Size, before.Size, err)
	}
	ev, err := client.CheckEvidenceFile(policy, rep.EvidenceFiles[0])
	if err != nil {
		t.Fatalf("the evidence does not verify offline: %v", err)
	}
	if len(ev.SignedBoth) < 3 {
		t.Fatalf("the evidence names %v; a quorum (3 of 4) signed each history", ev.SignedBoth)
	}
	b, err := os.ReadFile(state + "/checkpoint.note")
	if err != nil {
		t.Fatal(err)
	}
	if cp, _, _ := policy.VerifyCheckpoint(b); cp == nil || cp.Size != before.Size || string(cp.Root) != string(before.Root) {
		t.Fatal("the auditor replaced its state with the rewritten history")
	}
}

// TestStaleNode: a node cut off from the others keeps serving the last checkpoint it had (a
// replay of it, here, as a partitioned node or an operator withholding newer entries would).
// Being behind is not a fork: the audit finds it consistent, reports it as behind, and never
// moves its own state back; once the node rejoins it serves the same log as the rest.
func TestStaleNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw, policy := startNetwork(t, 4)
	s := newSubmitter()
	for i := range 3 {
		if code, err := s.submit(nw.URLs()[0], i); err != nil || code != http.StatusCreated {
			t.Fatalf("submit %d: %d %v", i, code, err)
		}
	}
	staleNote, stale := waitQuorumCheckpoint(t, policy, nw.URLs()[3], 3)
	leader, err := nw.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := 3
	if leader == victim {
		victim = 2
	}
	if err := nw.Stop(ctx, victim); err != nil {
		t.Fatal(err)
	}
	replay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/checkpoint" {
			http.NotFound(w, r)
			return
		}
		w.Write(staleNote)
	}))
	defer replay.Close()
	up := []string{}
	for i, u := range nw.URLs() {
		if i != victim {
			up = append(up, u)
		}
	}
	for i := range 5 {
		if code, err := s.submit(up[i%3], 10+i); err != nil || code != http.StatusCreated {
			t.Fatalf("submit %d with one node down: %d %v", i, code, err)
		}
	}
	_, fresh := waitQuorumCheckpoint(t, policy, up[0], stale.Size+5)

	state := t.TempDir()
	rep, err := client.Audit(client.AuditConfig{Servers: append(up[:2:2], replay.URL), Policy: policy, StateDir: state})
	if err != nil {
		t.Fatalf("a stale but consistent node made the audit fail: %v", err)
	}
	if rep.Size < fresh.Size || len(rep.Behind) != 1 || rep.Behind[0].Server != replay.URL || rep.Behind[0].Size != stale.Size {
		t.Fatalf("audit report: %+v", rep)
	}
	// Asked only the stale node, the auditor keeps its newer state.
	rep, err = client.Audit(client.AuditConfig{Servers: []string{replay.URL}, Policy: policy, StateDir: state})
	if err != nil || rep.Size < fresh.Size || len(rep.Behind) != 1 {
		t.Fatalf("audit of the stale node alone: %+v %v", rep, err)
	}
	b, _ := os.ReadFile(state + "/checkpoint.note")
	if cp, _, _ := policy.VerifyCheckpoint(b); cp == nil || cp.Size < fresh.Size {
		t.Fatal("the auditor moved its state back to the stale checkpoint")
	}

	// A server that shows a newer checkpoint but will not prove it consistent with what the
	// auditor verified before does not move the auditor's state: the audit fails without
	// evidence, and passes once a server gives the proof.
	older := t.TempDir()
	if _, err := client.Audit(client.AuditConfig{Servers: []string{replay.URL}, Policy: policy, StateDir: older}); err != nil {
		t.Fatal(err)
	}
	noProofs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			b, _ := fetch(up[0] + "/checkpoint")
			w.Write(b)
			return
		}
		http.Error(w, "no proofs here", http.StatusInternalServerError)
	}))
	defer noProofs.Close()
	rep, err = client.Audit(client.AuditConfig{Servers: []string{noProofs.URL}, Policy: policy, StateDir: older})
	if err == nil || errors.Is(err, client.ErrCheck) || len(rep.EvidenceFiles) != 0 {
		t.Fatalf("audit without a consistency proof: %+v %v", rep, err)
	}
	if b, _ := os.ReadFile(older + "/checkpoint.note"); string(b) != string(staleNote) {
		t.Fatal("the auditor adopted a checkpoint it could not prove consistent with its state")
	}
	if _, err := client.Audit(client.AuditConfig{Servers: []string{up[0]}, Policy: policy, StateDir: older}); err != nil {
		t.Fatalf("audit with the proof: %v", err)
	}

	// The node rejoins, catches up and serves the same log.
	if err := nw.Start(ctx, victim); err != nil {
		t.Fatal(err)
	}
	_, caught := waitQuorumCheckpoint(t, policy, nw.URLs()[victim], fresh.Size)
	rep, err = client.Audit(client.AuditConfig{Servers: nw.URLs(), Policy: policy, StateDir: state})
	if err != nil {
		t.Fatalf("audit after the node rejoined: %v", err)
	}
	if rep.Size < caught.Size {
		t.Fatalf("audit after rejoin: %+v", rep)
	}
}
