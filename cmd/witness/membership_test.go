package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/localnet/localnettest"
	"github.com/witnessnet/witnessnet/internal/p2p"
	"github.com/witnessnet/witnessnet/internal/verify"
)

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := keygenCmd([]string{"--name", "delta", "--url", "https://delta.example/", "--origin", "example.org/log", "--dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("keygen: %d %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("output: %q", out.String())
	}
	f0, f1, f2 := strings.Fields(lines[0]), strings.Fields(lines[1]), strings.Fields(lines[2])
	if f0[0] != "log" || f1[0] != "witness" || f2[0] != "peer" || f1[1] != "delta" || f1[3] != "https://delta.example" || f2[1] != "delta" {
		t.Fatalf("output: %q", out.String())
	}
	lv, err := note.NewVerifier(f0[1])
	if err != nil || lv.Name() != "example.org/log" {
		t.Fatalf("log key %q: %v", f0[1], err)
	}
	if _, err := fnote.NewVerifierForCosignatureV1(f1[2]); err != nil {
		t.Fatalf("witness key %q: %v", f1[2], err)
	}
	// The policy and membership lines parse as a member of a policy.
	policy := lines[0] + "\n" + lines[1] + "\nquorum delta\n"
	if _, err := verify.ParsePolicy([]byte(policy)); err != nil {
		t.Fatalf("policy lines: %v\n%s", err, policy)
	}
	key, err := p2p.LoadIdentity(filepath.Join(dir, "p2p.key"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := p2p.PeerID(key.Public().(ed25519.PublicKey)); id.String() != f2[2] {
		t.Fatalf("peer line %s, p2p.key is %s", f2[2], id)
	}
	if code := keygenCmd([]string{"--name", "delta", "--url", "https://delta.example", "--dir", dir}, &out, &errb); code != 1 {
		t.Fatalf("keygen over existing keys: exit %d", code)
	}
}

// The next membership version, signed by each member with witness membership sign, merged and
// submitted, is taken by the network.
func TestMembershipSignMergeSubmit(t *testing.T) {
	nw, _ := localnettest.Start(t, 3)
	dir := t.TempDir()
	next := strings.Replace(string(nw.Genesis), "version 1\n", "version 2\n", 1)
	next = strings.Replace(next, "group members 3 ", "group members 2 ", 1)
	os.WriteFile(filepath.Join(dir, "next.txt"), []byte(next), 0o644)
	var signed []string
	for _, m := range nw.Members {
		key := filepath.Join(dir, m.Name+".key")
		os.WriteFile(key, []byte(m.WitSkey+"\n"), 0o600)
		out := filepath.Join(dir, m.Name+".signed")
		var o, e bytes.Buffer
		if code := membershipCmd([]string{"sign", "--key", key, "--name", m.Name, "--out", out, filepath.Join(dir, "next.txt")}, &o, &e); code != 0 {
			t.Fatalf("sign as %s: %d %s", m.Name, code, e.String())
		}
		signed = append(signed, out)
	}
	merged := filepath.Join(dir, "next.signed")
	var o, e bytes.Buffer
	// Two signatures are not the current quorum (3 of 3): refused, and nothing changes.
	if code := membershipCmd(append([]string{"merge", "--out", merged}, signed[:2]...), &o, &e); code != 0 {
		t.Fatalf("merge: %d %s", code, e.String())
	}
	if code := membershipCmd([]string{"submit", "--server", nw.URLs()[0], merged}, &o, &e); code != 1 || !strings.Contains(e.String(), "403") {
		t.Fatalf("submit with 2 of 3: exit %d %s", code, e.String())
	}
	if code := membershipCmd(append([]string{"merge", "--out", merged}, signed...), &o, &e); code != 0 {
		t.Fatalf("merge: %d %s", code, e.String())
	}
	if code := membershipCmd([]string{"submit", "--server", nw.URLs()[1], merged}, &o, &e); code != 0 {
		t.Fatalf("submit: %d %s", code, e.String())
	}
	resp, err := http.Get(nw.URLs()[2] + "/v1/membership")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Version uint64 `json:"version"`
	}
	json.NewDecoder(resp.Body).Decode(&got)
	for deadline := time.Now().Add(10 * time.Second); got.Version != 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r, err := http.Get(nw.URLs()[2] + "/v1/membership")
		if err == nil {
			json.NewDecoder(r.Body).Decode(&got)
			r.Body.Close()
		}
	}
	if got.Version != 2 {
		t.Fatalf("membership version %d after submit", got.Version)
	}
	if code := membershipCmd([]string{"sign", "--key", filepath.Join(dir, "node1.key"), "--name", "node1", filepath.Join(dir, "node1.key")}, &o, &e); code != 1 {
		t.Fatalf("signing a file that is not a membership text: exit %d", code)
	}
}
