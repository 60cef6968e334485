//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// client runs the client binary in dir.
func client(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "client"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatal(err)
	}
	return 0, string(out)
}

func mustClient(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, out := client(t, dir, args...)
	if code != 0 {
		t.Fatalf("client %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// TestRebuildersCosignAcrossLeaderFailure is the rebuilder scenario on a 3-node testnet of real
// processes: a layout whose rebuild step needs 2 of 3 rebuilders; the first rebuilder's link
// waits in replicated state; the leader is SIGKILLed; the second rebuilder co-signs through
// another node; verification fails with one signature and passes with two, and a third
// rebuilder with other products shows up as dissent.
func TestRebuildersCosignAcrossLeaderFailure(t *testing.T) {
	nw := startNetwork(t, 3, 17300)
	dir := t.TempDir()
	for _, k := range []string{"owner", "dev", "rb1", "rb2", "rb3"} {
		mustClient(t, dir, "keygen", "--out", k)
	}
	keys, ids := map[string]any{}, map[string]string{}
	for _, k := range []string{"dev", "rb1", "rb2", "rb3"} {
		b, _ := os.ReadFile(filepath.Join(dir, k+".pub"))
		key, err := intoto.ParseKeyPEM(b, "")
		if err != nil {
			t.Fatal(err)
		}
		keys[key.KeyID], ids[k] = key.JSON(), key.KeyID
	}
	layout, _ := json.Marshal(map[string]any{
		"_type": "layout", "expires": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339), "readme": "", "keys": keys, "inspect": []any{},
		"steps": []any{
			map[string]any{"_type": "step", "name": "build", "threshold": 1, "pubkeys": []string{ids["dev"]}, "expected_command": []string{},
				"expected_materials": [][]string{}, "expected_products": [][]string{{"CREATE", "app.bin"}, {"DISALLOW", "*"}}},
			map[string]any{"_type": "step", "name": "rebuild", "threshold": 2, "pubkeys": []string{ids["rb1"], ids["rb2"], ids["rb3"]}, "expected_command": []string{},
				"expected_materials": [][]string{}, "expected_products": [][]string{{"MATCH", "app.bin", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}}},
		},
	})
	os.WriteFile(filepath.Join(dir, "layout.json"), layout, 0o644)
	mustClient(t, dir, "sign", "--key", "owner.key", "--out", "root.layout", "layout.json")
	var sub map[string]any
	json.Unmarshal([]byte(mustClient(t, dir, "submit", "--json", "--server", nw.urls[0], "--key-file", "owner.pub", "root.layout")), &sub)
	layoutID := sub["entry"].(string)

	mustClient(t, dir, "run", "--step", "build", "--key", "dev.key", "--products", "app.bin", "--server", nw.urls[1], "--layout", layoutID,
		"--", "sh", "-c", "printf 'release 1.0' > app.bin")
	for rb, content := range map[string]string{"rb1": "release 1.0", "rb2": "release 1.0", "rb3": "release 1.0 (different toolchain)"} {
		os.MkdirAll(filepath.Join(dir, rb), 0o755)
		os.WriteFile(filepath.Join(dir, rb, "app.bin"), []byte(content), 0o644)
	}
	verify := func(wait string) (int, string) {
		args := []string{"verify", "--policy", filepath.Join(nw.dir, "policy.txt"), "--layout", layoutID, "--layout-key", "owner.pub", "--products", "app.bin", "--wait", wait}
		for i, u := range nw.urls {
			if nw.procs[i] != nil {
				args = append(args, "--server", u)
			}
		}
		return client(t, dir, args...)
	}

	leader := nw.leader()
	first := (leader + 1) % 3
	out := mustClient(t, filepath.Join(dir, "rb1"), "run", "--step", "rebuild", "--key", "../rb1.key", "--products", "app.bin",
		"--server", nw.urls[first], "--layout", layoutID, "--", "true")
	if !strings.Contains(out, "pending") {
		t.Fatalf("first rebuilder: %s", out)
	}
	mustClient(t, filepath.Join(dir, "rb3"), "run", "--step", "rebuild", "--key", "../rb3.key", "--products", "app.bin",
		"--server", nw.urls[first], "--layout", layoutID, "--", "true")
	if code, out := verify("2s"); code != 1 {
		t.Fatalf("verify with one rebuilder's signature: exit %d\n%s", code, out)
	}

	// The leader dies between the two signatures; the pending link survives in replicated state.
	nw.kill(leader)
	second := (leader + 2) % 3
	out = mustClient(t, filepath.Join(dir, "rb2"), "cosign", "--server", nw.urls[second], "--key", "../rb2.key",
		"--layout", layoutID, "--step", "rebuild", "--products", "app.bin")
	if !strings.Contains(out, "appended at index") {
		t.Fatalf("second rebuilder after the leader died: %s", out)
	}
	// With 3 members the checkpoint quorum is all three: the killed node must come back before a
	// checkpoint covering the new link can be cosigned.
	nw.start(leader)
	nw.waitHealthy(leader)
	code, out := verify("60s")
	if code != 0 || !strings.Contains(out, "PASS") || !strings.Contains(out, "step rebuild: 2 of 2") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "pending (not in the log): step rebuild, 1 of 2") {
		t.Fatalf("the dissenting rebuilder is not reported:\n%s", out)
	}
	t.Logf("client verify:\n%s", out)
}
