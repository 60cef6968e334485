//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "witnessnet-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, cmd := range []string{"witness", "client"} {
		b := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "github.com/witnessnet/witnessnet/cmd/"+cmd)
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", cmd, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// network is a testnet of real node processes.
type network struct {
	t     *testing.T
	dir   string
	urls  []string
	procs []*exec.Cmd
}

func startNetwork(t *testing.T, n, basePort int, testnetArgs ...string) *network {
	return startNetworkIn(t, t.TempDir(), n, basePort, "", testnetArgs...)
}

// startNetworkIn writes a testnet of n members into dir, appends extra to each member's
// configuration, and starts them.
func startNetworkIn(t *testing.T, dir string, n, basePort int, extra string, testnetArgs ...string) *network {
	args := append([]string{"testnet", "--nodes", fmt.Sprint(n), "--dir", dir, "--base-port", fmt.Sprint(basePort)}, testnetArgs...)
	out, err := exec.Command(filepath.Join(binDir, "witness"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("witness testnet: %v\n%s", err, out)
	}
	for i := range n {
		cfg := filepath.Join(dir, fmt.Sprintf("node%d", i+1), "witness.yaml")
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(extra)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	nw := &network{t: t, dir: dir, procs: make([]*exec.Cmd, n)}
	for i := range n {
		nw.urls = append(nw.urls, fmt.Sprintf("http://127.0.0.1:%d", basePort+i))
		nw.start(i)
	}
	t.Cleanup(func() {
		for i := range nw.procs {
			nw.kill(i)
		}
	})
	for i := range n {
		nw.waitHealthy(i)
	}
	return nw
}

func (nw *network) start(i int) {
	cmd := exec.Command(filepath.Join(binDir, "witness"), "run", "--config", filepath.Join(nw.dir, fmt.Sprintf("node%d", i+1), "witness.yaml"))
	logf, err := os.OpenFile(filepath.Join(nw.dir, fmt.Sprintf("node%d.log", i+1)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		nw.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		nw.t.Fatal(err)
	}
	nw.procs[i] = cmd
}

// kill sends SIGKILL and reaps the process.
func (nw *network) kill(i int) {
	if p := nw.procs[i]; p != nil {
		_ = p.Process.Signal(syscall.SIGKILL)
		_ = p.Wait()
		nw.procs[i] = nil
	}
}

func (nw *network) waitHealthy(i int) {
	nw.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(nw.urls[i] + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	logb, _ := os.ReadFile(filepath.Join(nw.dir, fmt.Sprintf("node%d.log", i+1)))
	if len(logb) > 4000 {
		logb = logb[len(logb)-4000:]
	}
	nw.t.Fatalf("node%d never became healthy; its log ends:\n%s", i+1, logb)
}

type status struct {
	Name           string `json:"name"`
	RaftState      string `json:"raft_state"`
	Leader         string `json:"leader"`
	TreeSize       uint64 `json:"tree_size"`
	CheckpointSize uint64 `json:"checkpoint_size"`
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func getBytes(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	return b, err
}

// leader finds the node that leads, polling until one does.
func (nw *network) leader() int {
	nw.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i, u := range nw.urls {
			if nw.procs[i] == nil {
				continue
			}
			var s status
			if getJSON(u+"/v1/status", &s) == nil && s.RaftState == "Leader" {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	nw.t.Fatal("no leader")
	return -1
}

// submitter signs DSSE envelopes with one Ed25519 key, in process.
type submitter struct {
	priv ed25519.PrivateKey
	pem  string
	id   string
}

func newSubmitter() *submitter {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha256.Sum256(der)
	return &submitter{priv: priv, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), id: hex.EncodeToString(h[:])}
}

// envelope makes a ~1 KiB DSSE envelope for entry n.
func (s *submitter) envelope(n int) []byte {
	const typ = "application/vnd.in-toto+json"
	payload := fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"e2e-%d","digest":{"sha256":"%064d"}}],"predicateType":"https://witnessnet.dev/e2e/v1","predicate":{"pad":%q}}`, n, n, strings.Repeat("x", 500))
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(typ), typ, len(payload), payload)
	env, _ := json.Marshal(map[string]any{"payloadType": typ, "payload": base64.StdEncoding.EncodeToString(payload),
		"signatures": []map[string]string{{"keyid": s.id, "sig": base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, pae))}}})
	return env
}

// submit posts one envelope to url; ok is false for anything but 200/201 (an unknown outcome
// that the caller retries with the same envelope).
func (s *submitter) submit(ctx context.Context, url string, env []byte) (index uint64, ok bool) {
	body, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(env), "public_keys": []string{s.pem}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/entries", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		io.Copy(io.Discard, resp.Body)
		return 0, false
	}
	var out struct {
		Index uint64 `json:"index"`
		Entry string `json:"entry"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return 0, false
	}
	sum := sha256.Sum256(env)
	if out.Entry != "sha256:"+hex.EncodeToString(sum[:]) {
		return 0, false
	}
	return out.Index, true
}
