package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/localnet/localnettest"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// cli runs the client in-process and returns its exit status and output.
func cli(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	code := run(args, &out, &errb)
	os.Chdir(wd)
	return code, out.String() + errb.String()
}

func mustCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, out := cli(t, dir, args...)
	if code != 0 {
		t.Fatalf("client %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func keyJSON(t *testing.T, path string) (string, map[string]any) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := intoto.ParseKeyPEM(b, "")
	if err != nil {
		t.Fatal(err)
	}
	return k.KeyID, k.JSON()
}

// TestSupplyChainThroughTheLog registers a layout, records a build with client run, has two of
// three rebuilders co-sign the rebuild through different nodes, and verifies the product against
// the log online and from a bundle; a tampered product and a lone rebuilder fail.
func TestSupplyChainThroughTheLog(t *testing.T) {
	nw, _ := localnettest.Start(t, 3)
	dir := t.TempDir()
	for _, k := range []string{"owner", "dev", "rb1", "rb2", "rb3"} {
		mustCLI(t, dir, "keygen", "--out", k)
	}
	keys := map[string]any{}
	ids := map[string]string{}
	for _, k := range []string{"dev", "rb1", "rb2", "rb3"} {
		id, j := keyJSON(t, filepath.Join(dir, k+".pub"))
		keys[id], ids[k] = j, id
	}
	layout := map[string]any{
		"_type": "layout", "expires": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339), "readme": "demo", "keys": keys,
		"inspect": []any{},
		"steps": []any{
			map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{ids["dev"]}, "expected_command": []string{},
				"expected_materials": [][]string{}, "expected_products": [][]string{{"CREATE", "app.bin"}, {"DISALLOW", "*"}}},
			map[string]any{"_type": "step", "name": "rebuild", "threshold": 2, "pubkeys": []string{ids["rb1"], ids["rb2"], ids["rb3"]}, "expected_command": []string{},
				"expected_materials": [][]string{}, "expected_products": [][]string{{"MATCH", "app.bin", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}}},
		},
	}
	lb, _ := json.Marshal(layout)
	os.WriteFile(filepath.Join(dir, "layout.json"), lb, 0o644)
	mustCLI(t, dir, "sign", "--key", "owner.key", "--format", "metablock", "--out", "root.layout", "layout.json")
	u := nw.URLs()
	out := mustCLI(t, dir, "submit", "--server", u[0], "--key-file", "owner.pub", "--json", "root.layout")
	var sub map[string]any
	json.Unmarshal([]byte(out), &sub)
	layoutID := sub["entry"].(string)

	// The developer builds; rebuilders each reproduce app.bin in their own directory.
	mustCLI(t, dir, "run", "--step", "build", "--key", "dev.key", "--products", "app.bin", "--server", u[1], "--layout", layoutID,
		"--", "sh", "-c", "printf 'app v1' > app.bin")
	for _, rb := range []string{"rb1", "rb2", "rb3"} {
		os.MkdirAll(filepath.Join(dir, rb), 0o755)
		content := "app v1"
		if rb == "rb3" {
			content = "app v1 with a backdoor"
		}
		os.WriteFile(filepath.Join(dir, rb, "app.bin"), []byte(content), 0o644)
	}
	policy := nw.PolicyPath()
	verifyArgs := []string{"verify", "--server", u[0], "--server", u[1], "--server", u[2], "--policy", policy, "--layout", layoutID, "--layout-key", "owner.pub", "--products", "app.bin"}

	// rb1 submits its rebuild link; alone it is pending, and verification fails.
	out = mustCLI(t, filepath.Join(dir, "rb1"), "run", "--step", "rebuild", "--key", "../rb1.key", "--products", "app.bin", "--server", u[2], "--layout", layoutID, "--", "true")
	if !strings.Contains(out, "pending") {
		t.Fatalf("first rebuilder: %s", out)
	}
	if code, out := cli(t, dir, append(verifyArgs, "--wait", "3s")...); code != 1 || !strings.Contains(out, "threshold not met") && !strings.Contains(out, "missing link") {
		t.Fatalf("verify with one rebuilder: exit %d\n%s", code, out)
	}
	// rb3 rebuilt something else: it cannot co-sign rb1's link, and its own stays pending.
	if code, out := cli(t, filepath.Join(dir, "rb3"), "cosign", "--server", u[0], "--key", "../rb3.key", "--layout", layoutID, "--step", "rebuild", "--products", "app.bin"); code != 1 {
		t.Fatalf("dissenting cosign: exit %d\n%s", code, out)
	}
	mustCLI(t, filepath.Join(dir, "rb3"), "run", "--step", "rebuild", "--key", "../rb3.key", "--products", "app.bin", "--server", u[0], "--layout", layoutID, "--", "true")
	// rb2 co-signs rb1's link through another node: the link is appended with both signatures.
	out = mustCLI(t, filepath.Join(dir, "rb2"), "cosign", "--server", u[1], "--key", "../rb2.key", "--layout", layoutID, "--step", "rebuild", "--products", "app.bin")
	if !strings.Contains(out, "appended at index") {
		t.Fatalf("second rebuilder: %s", out)
	}
	out = mustCLI(t, dir, append(verifyArgs, "--write-bundle", "chain.bundle")...)
	if !strings.Contains(out, "PASS") || !strings.Contains(out, "step rebuild: 2 of 2") || !strings.Contains(out, "pending (not in the log): step rebuild") {
		t.Fatalf("verify: %s", out)
	}
	// Offline, from the bundle alone.
	out = mustCLI(t, dir, "verify", "--bundle", "chain.bundle", "--policy", policy, "--layout-key", "owner.pub", "--products", "app.bin")
	if !strings.Contains(out, "PASS") {
		t.Fatalf("bundle: %s", out)
	}
	// A tampered product fails with a readable reason.
	os.WriteFile(filepath.Join(dir, "app.bin"), []byte("app v1 tampered"), 0o644)
	if code, out := cli(t, dir, "verify", "--bundle", "chain.bundle", "--policy", policy, "--layout-key", "owner.pub", "--products", "app.bin"); code != 1 || !strings.Contains(out, "FAIL") {
		t.Fatalf("tampered product: exit %d\n%s", code, out)
	}
	// With --json, the failure is one JSON value on standard output.
	var jout, jerr bytes.Buffer
	wd, _ := os.Getwd()
	os.Chdir(dir)
	code := run([]string{"verify", "--json", "--bundle", "chain.bundle", "--policy", policy, "--layout-key", "owner.pub", "--products", "app.bin"}, &jout, &jerr)
	os.Chdir(wd)
	dec := json.NewDecoder(&jout)
	var res map[string]any
	if err := dec.Decode(&res); code != 1 || err != nil || res["ok"] != false || dec.More() {
		t.Fatalf("verify --json of a tampered product: exit %d, %v\n%s", code, err, jout.String())
	}
	// A wrong layout key fails.
	if code, out := cli(t, dir, "verify", "--bundle", "chain.bundle", "--policy", policy, "--layout-key", "dev.pub"); code != 1 || !strings.Contains(out, "layout signature") {
		t.Fatalf("wrong layout key: exit %d\n%s", code, out)
	}
}
