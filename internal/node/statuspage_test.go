package node

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStatusPage(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	leader := tn.leader()
	s := newSigner(t)
	for i := range 3 {
		payload := fmt.Appendf(nil, `{"_type":"link","name":"build-%d"}`, i)
		if code, out := post(t, tn.members[i].url(), s.body(payload)); code != http.StatusCreated {
			t.Fatalf("submit: %d %v", code, out)
		}
	}
	m := tn.members[0]
	tn.waitCheckpoint(m, 3)
	resp, err := http.Get(m.url() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	for _, want := range []string{
		`<span id="node-name">` + m.name + `</span>`,
		`<td id="leader">` + leader.name + `</td>`,
		`<td id="tree-size">3</td>`,
		"build-2", "<td>link</td>",
		`id="checkpoint-text"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
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
