package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/localnet/localnettest"
)

// forge signs a checkpoint body with member 0's log key and the given members' witness keys, as
// colluding members would.
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

func TestAuditFindsAForkAndEvidenceVerifies(t *testing.T) {
	nw, _ := localnettest.Start(t, 4)
	dir := t.TempDir()
	mustCLI(t, dir, "keygen", "--out", "k")
	os.WriteFile(filepath.Join(dir, "doc.json"), []byte(`{"hello":"audit"}`), 0o644)
	mustCLI(t, dir, "sign", "--key", "k.key", "--payload-type", "application/json", "--out", "env.json", "doc.json")
	mustCLI(t, dir, "submit", "--server", nw.URLs()[0], "--key-file", "k.pub", "env.json")
	policy := nw.PolicyPath()
	args := []string{"audit", "--policy", policy, "--state", "state", "--full"}
	for _, u := range nw.URLs() {
		args = append(args, "--server", u)
	}
	// Wait until every member serves a checkpoint with the entry, then audit.
	var out string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var code int
		code, out = cli(t, dir, args...)
		if code == 0 && strings.Contains(out, "re-verified 1 entries") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, "OK: 4 server(s) consistent") || !strings.Contains(out, "re-verified 1 entries") {
		t.Fatalf("honest audit:\n%s", out)
	}
	// Members 1, 2 and 3 collude: the fork carries a quorum. A server shows it to the auditor.
	body := fmt.Sprintf("%s\n1\n%s\n", "witnessnet.local/log", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	forked := forge(t, nw, body, 1, 2, 3)
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			w.Write(forked)
			return
		}
		http.NotFound(w, r)
	}))
	defer fake.Close()
	code, out := cli(t, dir, "audit", "--policy", policy, "--state", "state", "--server", nw.URLs()[0], "--server", fake.URL)
	if code != 1 || !strings.Contains(out, "evidence") {
		t.Fatalf("audit of a forked view: exit %d\n%s", code, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "state", "evidence-*.json"))
	if len(files) == 0 {
		t.Fatal("no evidence file")
	}
	out = mustCLI(t, dir, "audit", "--policy", policy, "--check-evidence", files[0])
	// Two quorums of 3 out of 4 share at least 2 members: the evidence names them, and only
	// members who really signed the fork.
	named := 0
	for _, m := range []string{"node2", "node3", "node4"} {
		if strings.Contains(out, m) {
			named++
		}
	}
	if named < 2 || strings.Contains(out, "node1,") {
		t.Fatalf("evidence names %d of the colluding members:\n%s", named, out)
	}
	// Tampered evidence is refused.
	b, _ := os.ReadFile(files[0])
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(strings.Replace(string(b), `"older": "witnessnet.local/log\n1\n`, `"older": "witnessnet.local/log\n2\n`, 1)), 0o644)
	if code, out := cli(t, dir, "audit", "--policy", policy, "--check-evidence", "bad.json"); code != 1 {
		t.Fatalf("tampered evidence: exit %d\n%s", code, out)
	}
}
