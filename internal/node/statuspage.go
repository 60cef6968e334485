package node

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
)

//go:embed page/status.html
var pageFS embed.FS

var statusTemplate = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"short": func(s string) string {
		s = strings.TrimPrefix(s, "sha256:")
		if len(s) > 16 {
			return s[:16] + "…"
		}
		return s
	},
	"ago": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
}).ParseFS(pageFS, "page/status.html"))

// recentEntries is how many of the newest entries the status page lists.
const recentEntries = 20

type memberView struct {
	Name    string
	URL     string
	Self    bool
	Leader  bool
	Up      bool
	Latency time.Duration
	Err     string
}

type entryView struct {
	Index   uint64
	Entry   string
	Kind    string // layout, link, attestation or envelope
	Step    string
	Layout  string
	Signers []string
}

type pageData struct {
	Status        Status
	Members       []memberView
	Checkpoint    string
	Cosigners     []string
	Pending       []pendingView
	Disagreements []disagreement
	Recent        []entryView
	Evidence      []string
	Rendered      time.Time
}

// handleStatusPage serves the human status page at GET /: server-rendered, no script.
func (n *Node) handleStatusPage(w http.ResponseWriter, r *http.Request) {
	d := pageData{Status: n.status(), Rendered: time.Now().UTC()}
	d.Members = n.probeMembers(r.Context(), d.Status.Leader)
	if cp, _ := n.collector.published(); cp != nil {
		d.Checkpoint, d.Cosigners = checkpointView(cp, n.cfg.Origin)
	}
	if groups, err := n.ledger.Pending("", time.Now()); err == nil {
		var pr pendingResponse
		pr.Pending, pr.Disagreements = pendingViews(groups)
		d.Pending, d.Disagreements = pr.Pending, pr.Disagreements
	}
	d.Recent = n.recent(r.Context())
	d.Evidence = n.evidenceLines()
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, d); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// evidenceLines lists evidence of inconsistency this node holds; the page shows it first.
func (n *Node) evidenceLines() []string {
	var out []string
	for _, e := range n.collector.Evidences() {
		what := "cosigned a checkpoint that disagrees with this node's tree"
		if e.Kind == "equivocation" {
			what = "cosigned two different checkpoints of one size; this node stopped cosigning"
		}
		out = append(out, fmt.Sprintf("%s: at size %d, %s %s (details: /v1/evidence)", e.Found.Format(time.RFC3339), e.Size, strings.Join(e.Signers, ", "), what))
	}
	return out
}

// checkpointView splits a published note into its text and the names of its cosigners.
func checkpointView(signed []byte, origin string) (string, []string) {
	text, sigs, _ := strings.Cut(string(signed), "\n\n")
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(sigs), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "\u2014 "))
		if len(f) == 2 && f[0] != origin {
			names = append(names, f[0])
		}
	}
	return text, names
}

// probeMembers asks every peer's /healthz, in parallel and briefly: liveness as this node sees it
// now.
func (n *Node) probeMembers(ctx context.Context, leader string) []memberView {
	out := []memberView{{Name: n.cfg.Name, URL: n.URL(), Self: true, Up: true, Leader: leader == n.cfg.Name}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range n.peers {
		if p.Name == n.cfg.Name {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := memberView{Name: p.Name, URL: p.URL, Leader: leader == p.Name}
			cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			t0 := time.Now()
			req, _ := http.NewRequestWithContext(cctx, http.MethodGet, p.URL+"/healthz", nil)
			resp, err := n.client.Do(req)
			if err == nil {
				resp.Body.Close()
				m.Up, m.Latency = resp.StatusCode == http.StatusOK, time.Since(t0).Round(time.Millisecond)
			} else {
				m.Err = err.Error()
			}
			mu.Lock()
			out = append(out, m)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b memberView) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// recent describes the newest integrated entries.
func (n *Node) recent(ctx context.Context) []entryView {
	size := n.ledger.TreeSize()
	var out []entryView
	for i := size; i > 0 && len(out) < recentEntries; i-- {
		e, err := n.ledger.Entry(ctx, i-1)
		if err != nil {
			break
		}
		v := describeEnvelope(e.Envelope)
		v.Index, v.Entry, v.Layout = i-1, ledger.IdentityOf(e.Envelope).String(), e.Layout
		out = append(out, v)
	}
	return out
}

// describeEnvelope reads what the page shows of an entry: its in-toto type, step name and the key
// ids of its signatures. It trusts nothing it reads: the page is informational, and admission and
// clients verify.
func describeEnvelope(raw []byte) entryView {
	var v entryView
	var env struct {
		PayloadType string          `json:"payloadType"`
		Payload     string          `json:"payload"`
		Signed      json.RawMessage `json:"signed"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
		} `json:"signatures"`
	}
	if json.Unmarshal(raw, &env) != nil {
		return entryView{Kind: "unreadable"}
	}
	for _, s := range env.Signatures {
		v.Signers = append(v.Signers, s.KeyID)
	}
	body := []byte(env.Signed)
	if env.Signed == nil {
		body, _ = base64.StdEncoding.DecodeString(env.Payload)
	}
	var doc struct {
		Type          string `json:"_type"`
		Name          string `json:"name"`
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			Name string `json:"name"`
		} `json:"predicate"`
	}
	v.Kind = "envelope"
	if json.Unmarshal(body, &doc) != nil {
		return v
	}
	switch {
	case doc.Type == "layout" || doc.Type == "link":
		v.Kind, v.Step = doc.Type, doc.Name
	case strings.HasPrefix(doc.Type, "https://in-toto.io/Statement/"):
		v.Kind, v.Step = "attestation", doc.Predicate.Name
		if strings.Contains(doc.PredicateType, "/Link/") {
			v.Kind = "link"
		}
	}
	return v
}

// pendingViews renders open groups and the steps whose open groups disagree.
func pendingViews(groups []*ledger.PendingLink) ([]pendingView, []disagreement) {
	views := []pendingView{}
	dis := []disagreement{}
	bySteps := map[[2]string][]string{}
	var order [][2]string
	for _, p := range groups {
		views = append(views, viewOf(p, false))
		k := [2]string{p.Layout, p.Step}
		if _, ok := bySteps[k]; !ok {
			order = append(order, k)
		}
		bySteps[k] = append(bySteps[k], p.Payload)
	}
	for _, k := range order {
		if len(bySteps[k]) > 1 {
			dis = append(dis, disagreement{Layout: k[0], Step: k[1], Payloads: bySteps[k]})
		}
	}
	return views, dis
}
