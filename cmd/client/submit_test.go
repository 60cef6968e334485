package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/witnessnet/witnessnet/internal/localnet/localnettest"
)

// client submit with several files sends them as one batch and reports each file; a file the
// node refuses fails the command (exit 1) without holding back the others.
func TestSubmitSeveralFiles(t *testing.T) {
	nw, leader := localnettest.Start(t, 3)
	server := nw.URLs()[(leader+1)%3] // a member that relays to the leader
	dir := t.TempDir()
	mustCLI(t, dir, "keygen", "--out", "alice")
	mustCLI(t, dir, "keygen", "--out", "bob")
	var files []string
	for i := range 5 {
		stmt := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"f%d","digest":{"sha256":"%064d"}}],"predicateType":"x","predicate":{}}`, i, i)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%d.json", i)), []byte(stmt), 0o644)
		mustCLI(t, dir, "sign", "--key", "alice.key", "--out", fmt.Sprintf("e%d.json", i), fmt.Sprintf("s%d.json", i))
		files = append(files, fmt.Sprintf("e%d.json", i))
	}
	out := mustCLI(t, dir, append([]string{"submit", "--server", server, "--key-file", "alice.pub"}, files...)...)
	if strings.Count(out, "appended at index") != 5 {
		t.Fatalf("five new entries:\n%s", out)
	}
	// Again, with one signed by a key the node is not given: four are already there, one refused.
	mustCLI(t, dir, "sign", "--key", "bob.key", "--out", "bob.json", "s0.json")
	code, out := cli(t, dir, append([]string{"submit", "--json", "--server", server, "--key-file", "alice.pub"}, append(files[:4:4], "bob.json")...)...)
	var results []struct {
		File   string `json:"file"`
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	if code != 1 || json.Unmarshal([]byte(out[:strings.LastIndex(out, "]")+1]), &results) != nil || len(results) != 5 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for i, r := range results[:4] {
		if r.Status != 200 || r.File != files[i] {
			t.Fatalf("resubmitted %s: %+v", files[i], r)
		}
	}
	if results[4].Status != 400 || results[4].Error != "bad_signature" {
		t.Fatalf("bob.json: %+v", results[4])
	}
}
