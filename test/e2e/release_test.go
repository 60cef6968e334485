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
)

// TestReleaseDogfood records witnessnet's own build with release/build.sh (client run) for the
// layout in release/layout.template.json: one builder and two rebuilders who reproduce the
// binaries bit for bit; then the client verifies the release's binaries against the network.
func TestReleaseDogfood(t *testing.T) {
	root := repoRoot(t)
	nw := startNetwork(t, 3, 17500)
	dir := t.TempDir()
	clientBin := filepath.Join(binDir, "client")
	ids := map[string]string{}
	keys := map[string]json.RawMessage{}
	for _, k := range []string{"owner", "builder", "rebuilder1", "rebuilder2"} {
		mustClient(t, dir, "keygen", "--out", k)
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(mustClient(t, dir, "key", k+".pub")), &m); err != nil {
			t.Fatal(err)
		}
		for id, v := range m {
			ids[k] = id
			if k != "owner" {
				keys[id] = v
			}
		}
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "release", "layout.template.json"))
	if err != nil {
		t.Fatal(err)
	}
	keysJSON, _ := json.Marshal(keys)
	layout := strings.NewReplacer(
		"EXPIRES", time.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339),
		"KEYS", string(keysJSON),
		"BUILDER", `"`+ids["builder"]+`"`,
		"REBUILDERS", `"`+ids["rebuilder1"]+`", "`+ids["rebuilder2"]+`"`,
	).Replace(string(tmpl))
	os.WriteFile(filepath.Join(dir, "layout.json"), []byte(layout), 0o644)
	mustClient(t, dir, "sign", "--key", "owner.key", "--out", "release.layout", "layout.json")
	var sub map[string]any
	json.Unmarshal([]byte(mustClient(t, dir, "submit", "--json", "--server", nw.urls[0], "--key-file", "owner.pub", "release.layout")), &sub)
	layoutID := sub["entry"].(string)

	out := filepath.Join(root, "dist")
	defer os.RemoveAll(out)
	record := func(key, step, server string) string {
		cmd := exec.Command("bash", filepath.Join(root, "release", "build.sh"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CLIENT="+clientBin, "SERVER="+server, "LAYOUT="+layoutID,
			"KEY="+filepath.Join(dir, key+".key"), "STEP="+step)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("release/build.sh as %s (%s): %v\n%s", key, step, err, b)
		}
		return string(b)
	}
	record("builder", "build", nw.urls[1])
	if o := record("rebuilder1", "rebuild", nw.urls[2]); !strings.Contains(o, "pending") {
		t.Fatalf("first rebuilder: %s", o)
	}
	if o := record("rebuilder2", "rebuild", nw.urls[0]); !strings.Contains(o, "appended") {
		t.Fatalf("second rebuilder: %s", o)
	}
	args := []string{"verify", "--policy", filepath.Join(nw.dir, "policy.txt"), "--layout", layoutID, "--layout-key", filepath.Join(dir, "owner.pub"),
		"--products", "dist", "--wait", "60s"}
	for _, u := range nw.urls {
		args = append(args, "--server", u)
	}
	code, o := client(t, root, args...)
	if code != 0 || !strings.Contains(o, "step rebuild: 2 of 2") {
		t.Fatalf("verify the release: exit %d\n%s", code, o)
	}
	t.Logf("the release verifies:\n%s", o)
}
