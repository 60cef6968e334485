package node

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// TestAddCheckpointOnTheNode: POST /add-checkpoint on a running node witnesses a configured
// foreign log, keeps its state in witness.db across a restart, answers 404 for the network's own
// origin, and counts a fork of the witnessed log.
func TestAddCheckpointOnTheNode(t *testing.T) {
	const foreign = "example.com/foreign"
	skey, vkey, err := note.GenerateKey(rand.Reader, foreign)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, _ := note.NewSigner(skey)
	logVerifier, _ := note.NewVerifier(vkey)
	tn := newTestNet(t, 1, func(c *Config) {
		c.WitnessedLogs = map[string][]note.Verifier{foreign: {logVerifier}}
	})
	m := tn.members[0]
	post := func(old uint64, cp []byte) (int, string) {
		t.Helper()
		body := append([]byte(fmt.Sprintf("old %d\n\n", old)), cp...)
		resp, err := http.Post(m.url()+"/add-checkpoint", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	checkpoint := func(s note.Signer, origin string, size uint64, leaf string) []byte {
		text := fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf([]byte(leaf))))
		signed, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}

	// The network's own origin, even signed by the node's own log key: 404.
	ownSigner, _ := note.NewSigner(m.logSkey)
	if status, body := post(0, checkpoint(ownSigner, testOrigin, 1, "x")); status != http.StatusNotFound {
		t.Fatalf("own origin: %d %q", status, body)
	}
	status, body := post(0, checkpoint(logSigner, foreign, 1, "x"))
	if status != http.StatusOK || !strings.HasPrefix(body, "\u2014 "+m.name+" ") {
		t.Fatalf("first contact: %d %q", status, body)
	}

	tn.stop(m)
	tn.start(m)
	if status, body := post(0, checkpoint(logSigner, foreign, 1, "x")); status != http.StatusConflict || body != "1\n" {
		t.Fatalf("after restart, old 0: %d %q", status, body)
	}
	if status, body := post(1, checkpoint(logSigner, foreign, 1, "y")); status != http.StatusUnprocessableEntity {
		t.Fatalf("a fork of the witnessed log: %d %q", status, body)
	}
	resp, err := http.Get(m.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`witnessnet_add_checkpoint_refused_total{code="409"} 1`, `witnessnet_add_checkpoint_refused_total{code="422"} 1`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
