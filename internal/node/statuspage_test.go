package node

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStatusPage(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	leader := tn.leader()
	owner, dev := newParty(t), newParty(t)
	rb := []*party{newParty(t), newParty(t), newParty(t)}
	code, out := post(t, tn.members[0].url(), submitBody(rebuildLayout(owner, dev, rb, time.Now().Add(time.Hour)), "", owner.pem))
	if code != http.StatusCreated {
		t.Fatalf("layout: %d %v", code, out)
	}
	layoutID := out["entry"].(string)
	for i, b := range [][]byte{
		submitBody(signDSSE(linkOf("build", digestA), dev), layoutID),
		submitBody(signDSSE(linkOf("rebuild", digestA), rb[0]), layoutID),
		submitBody(signDSSE(linkOf("rebuild", digestB), rb[1]), layoutID),
	} {
		if code, out := post(t, tn.members[i].url(), b); code != http.StatusCreated && code != http.StatusAccepted {
			t.Fatalf("submit %d: %d %v", i, code, out)
		}
	}
	m := tn.members[0]
	tn.waitCheckpoint(m, 2)
	wants := []string{
		`<span id="node-name">` + m.name + `</span>`,
		`<td id="leader">` + leader.name + `</td>`,
		`<td id="tree-size">2</td>`,
		"<td>link</td><td>build</td>", "<td>layout</td>",
		`class="pending-link"><td>rebuild</td>`, `class="disagreement"`,
		`id="checkpoint-text"`,
	}
	// The member applies the co-signing contributions shortly after the nodes that took them.
	var page string
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(m.url() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		page, missing = string(body), nil
		for _, w := range wants {
			if !strings.Contains(page, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Fatalf("status page lacks %q", missing)
	}
	if n := strings.Count(page, `<tr class="member">`); n != 3 {
		t.Errorf("status page lists %d members, want 3", n)
	}
	if strings.Contains(page, `class="down"`) {
		t.Errorf("a member of a healthy network is shown down")
	}
	// Only "/" is the page; other paths stay 404.
	if resp, err := http.Get(m.url() + "/nope"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /nope: %v %v", resp.StatusCode, err)
	}
}
