//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository's root directory (the tests run in test/e2e).
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestReadmeQuickstart runs the README's quickstart as written: its first command (the demo)
// must pass, and its second (the tests) must be the command CI runs.
func TestReadmeQuickstart(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)## Quickstart.*?```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README has no quickstart block")
	}
	var cmds []string
	for _, line := range strings.Split(string(block[1]), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 2 {
		t.Fatalf("the quickstart has %d commands, want 2: %q", len(cmds), cmds)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "\n"+cmds[1]+"\n") {
		t.Fatalf(".ci/run does not run the README's test command %q", cmds[1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmds[0])
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmds[0], err, out)
	}
	for _, want := range []string{"Started a network of 4 organizations", "pending with 1 of 2 signatures", "appended at index",
		"PASS", "FAIL", "final product does not match", "auditor checks the log", "Done:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}

// TestStatusPageInBrowser renders a node's status page in headless Chromium after the demo has
// run a supply chain through the network.
func TestStatusPageInBrowser(t *testing.T) {
	browser := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no headless browser: install Debian's chromium to run this test (.ci/run does)")
	}
	demo := exec.Command(filepath.Join(binDir, "witness"), "demo", "--keep", "--dir", t.TempDir())
	stdout, err := demo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	demo.Stderr = os.Stderr
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		demo.Process.Signal(syscall.SIGINT)
		demo.Wait()
	}()
	url := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "status page: "); i >= 0 {
			url = strings.TrimSpace(line[i+len("status page: "):])
		}
		if strings.Contains(line, "keeps running") {
			break
		}
	}
	if url == "" {
		t.Fatal("the demo printed no status page")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --dump-dom %s: %v", browser, url, err)
	}
	page := string(dom)
	for _, want := range []string{
		`<span id="node-name">alpha</span>`, `id="leader"`, `id="tree-size">3<`,
		`id="checkpoint-text"`, `id="cosigners"`,
		`class="pending-link"><td>rebuild</td>`,
		"<td>layout</td>", "<td>link</td><td>build</td>", "<td>link</td><td>rebuild</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if n := strings.Count(page, `class="member"`); n != 4 {
		t.Errorf("the rendered page shows %d members, want 4", n)
	}
	if t.Failed() {
		t.Logf("rendered DOM:\n%s", page)
	}
}
