package attack

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/localnet/localnettest"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// forge signs a checkpoint body with member 0's log key and the witness keys of the given members.
func forge(t *testing.T, nw *localnet.Network, body string, members ...int) []byte {
	ls, err := note.NewSigner(nw.Members[0].LogSkey)
	if err != nil {
		t.Fatal(err)
	}
	signers := []note.Signer{ls}
	for _, i := range members {
		ws, err := fnote.NewSignerForCosignatureV1(nw.Members[i].WitSkey)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, ws)
	}
	b, err := note.Sign(&note.Note{Text: body}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForkedCheckpoints: members sign a checkpoint of the log's size over another root. Fewer
// than the quorum cannot make any client with the default policy accept it; a quorum of
// colluders (beyond the trust model) can, but an auditor comparing views turns the two
// checkpoints into evidence naming the members who signed both.
func TestForkedCheckpoints(t *testing.T) {
	nw, _ := localnettest.Start(t, 4)
	s := newSubmitter()
	if code, err := s.submit(nw.URLs()[0], 1); err != nil || code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, err)
	}
	policy, err := verify.ParsePolicy(nw.Policy)
	if err != nil {
		t.Fatal(err)
	}
	var honest *verify.Checkpoint
	for deadline := time.Now().Add(20 * time.Second); honest == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, code := fetch(nw.URLs()[0] + "/checkpoint"); code == 200 {
			honest, _, _ = policy.VerifyCheckpoint(b)
		}
	}
	if honest == nil {
		t.Fatal("no honest checkpoint")
	}
	body := fmt.Sprintf("%s\n%d\n%s\n", honest.Origin, honest.Size, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	// Two colluders: below the quorum of 3, no client accepts the fork.
	if _, _, err := policy.VerifyCheckpoint(forge(t, nw, body, 1, 2)); !errors.Is(err, verify.ErrQuorumNotMet) {
		t.Fatalf("a fork with 2 of 4 cosignatures: %v", err)
	}
	// Three colluders can show a client a fork, but not without the auditor noticing.
	forked := forge(t, nw, body, 1, 2, 3)
	if _, _, err := policy.VerifyCheckpoint(forked); err != nil {
		t.Fatalf("the colluders' fork should satisfy the policy: %v", err)
	}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(forked) }))
	defer fake.Close()
	state := t.TempDir()
	rep, err := client.Audit(client.AuditConfig{Servers: []string{nw.URLs()[0], fake.URL}, Policy: policy, StateDir: state})
	if !errors.Is(err, client.ErrCheck) || rep == nil || len(rep.EvidenceFiles) == 0 {
		t.Fatalf("audit of a forked view: %v", err)
	}
	ev, err := client.CheckEvidenceFile(policy, rep.EvidenceFiles[0])
	if err != nil {
		t.Fatalf("the evidence does not verify: %v", err)
	}
	colluders := 0
	for _, name := range ev.SignedBoth {
		for _, m := range nw.Members[1:] {
			if name == m.Name {
				colluders++
			}
		}
		if name == nw.Members[0].Name {
			t.Fatalf("the evidence names %s, who did not sign the fork", name)
		}
	}
	if colluders < 2 {
		t.Fatalf("the evidence names %v; two quorums of 3 of 4 share at least 2 members", ev.SignedBoth)
	}
	// Every node serves the honest checkpoint; the fork travelled only by gossip among members
	// and is relayed by one node's GET /v1/gossip. The audit compares it all the same.
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/gossip":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string][]string{"checkpoints": {string(forked)}})
		default:
			http.Redirect(w, r, nw.URLs()[1]+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		}
	}))
	defer relay.Close()
	rep, err = client.Audit(client.AuditConfig{Servers: []string{nw.URLs()[0], relay.URL}, Policy: policy, StateDir: t.TempDir()})
	if !errors.Is(err, client.ErrCheck) || rep == nil || len(rep.EvidenceFiles) == 0 || rep.Gossiped != 1 {
		t.Fatalf("audit of a fork heard only by gossip: %+v %v", rep, err)
	}
	if _, err := client.CheckEvidenceFile(policy, rep.EvidenceFiles[0]); err != nil {
		t.Fatalf("the evidence does not verify: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "checkpoint.note")); err == nil {
		b, _ := os.ReadFile(filepath.Join(state, "checkpoint.note"))
		if cp, _, _ := policy.VerifyCheckpoint(b); cp != nil && cp.Size == honest.Size && string(cp.Root) != string(honest.Root) {
			t.Fatal("the auditor adopted the forked checkpoint as its state")
		}
	}
}
