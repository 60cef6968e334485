package node

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/witnessnet/witnessnet/internal/witness"
	"golang.org/x/mod/sumdb/note"
)

// A member that cosigns two different checkpoints of one size: the node keeps the evidence (the
// member's two notes), stops cosigning, and says so on /v1/evidence and the status page.
func TestInconsistentMemberCosignatureStopsCosigning(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	tn.leader()
	s := newSigner(t)
	if code, out := post(t, tn.members[0].url(), s.body([]byte(`{"n":1}`))); code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, out)
	}
	victim, liar := tn.members[0], tn.members[1]
	tn.waitCheckpoint(victim, 1)
	// The liar signs (log key and witness key) a checkpoint of size 1 over another root.
	forged := forgeCheckpoint(t, liar, 1)
	resp, err := http.Post(victim.url()+"/v1/cosignatures", "text/plain", bytes.NewReader(forged))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged cosignature: %d", resp.StatusCode)
	}
	var ev struct {
		Evidence []Evidence `json:"evidence"`
	}
	getJSON(t, victim.url()+"/v1/evidence", &ev)
	// Two records: the forged note disagrees with the victim's tree, and the liar had already
	// cosigned the true checkpoint of that size: it signed both.
	kinds := map[string]Evidence{}
	for _, e := range ev.Evidence {
		kinds[e.Kind] = e
	}
	eq, ok := kinds["equivocation"]
	if !ok || eq.Size != 1 || len(eq.Signers) != 1 || eq.Signers[0] != liar.name || eq.Ours == "" || eq.Theirs == "" {
		t.Fatalf("evidence: %+v", ev)
	}
	if d, ok := kinds["disagrees"]; !ok || !strings.Contains(d.Theirs, liar.name) {
		t.Fatalf("evidence: %+v", ev)
	}
	// The victim no longer cosigns new checkpoints, even of its own correct tree.
	if code, _ := post(t, tn.members[2].url(), s.body([]byte(`{"n":2}`))); code != http.StatusCreated {
		t.Fatal("the network stopped taking entries")
	}
	deadline := time.Now().Add(10 * time.Second)
	for victim.node.ledger.LastBoundary() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if victim.node.ledger.LastBoundary() < 2 {
		t.Fatal("no boundary at size 2")
	}
	// The boundary at size 2 reaches the victim's checkpoint hook, which refuses to cosign.
	for counterValue(victim.node.metrics.cosignRefused) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if counterValue(victim.node.metrics.cosignRefused) < 1 {
		t.Fatal("the victim did not refuse to cosign")
	}
	st, err := victim.node.witness.(*witness.Witness).Last(testOrigin)
	if err != nil || st == nil || st.Size != 1 {
		t.Fatalf("the victim's cosigned state moved on: %+v %v", st, err)
	}
	resp, err = http.Get(victim.url() + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `id="evidence"`) || !strings.Contains(string(page), liar.name) {
		t.Fatal("the status page does not show the evidence")
	}

	// The evidence is on disk: after a restart the victim still holds it and still does not
	// cosign, until an operator moves the file away.
	tn.stop(victim)
	tn.start(victim)
	var after struct {
		Evidence []Evidence `json:"evidence"`
	}
	getJSON(t, victim.url()+"/v1/evidence", &after)
	if len(after.Evidence) != len(ev.Evidence) {
		t.Fatalf("after a restart the victim holds %d evidence records, before %d", len(after.Evidence), len(ev.Evidence))
	}
	if !halted(victim) {
		t.Fatal("after a restart the victim cosigns again despite the evidence")
	}
	tn.stop(victim)
	if err := os.Rename(filepath.Join(victim.dir, evidenceFile), filepath.Join(victim.dir, "evidence.reviewed")); err != nil {
		t.Fatal(err)
	}
	tn.start(victim)
	if halted(victim) || len(victim.node.collector.Evidences()) != 0 {
		t.Fatal("the evidence file was moved away, yet the victim still refuses")
	}
}

// forgeCheckpoint is a checkpoint of size over another root, signed by m's log key and cosigned by
// its witness key: what a lying member would push.
func forgeCheckpoint(t *testing.T, m *testMember, size uint64) []byte {
	t.Helper()
	ls, _ := note.NewSigner(m.logSkey)
	ws, _ := fnote.NewSignerForCosignatureV1(m.witSkey)
	body := fmt.Sprintf("%s\n%d\n%s\n", testOrigin, size, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	forged, err := note.Sign(&note.Note{Text: body}, ls, ws)
	if err != nil {
		t.Fatal(err)
	}
	return forged
}

func halted(m *testMember) bool {
	m.node.collector.mu.Lock()
	defer m.node.collector.mu.Unlock()
	return m.node.collector.halted
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
