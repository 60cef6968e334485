package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/consensus"
	"github.com/witnessnet/witnessnet/internal/ledger"
)

type batchAnswer struct {
	Results []struct {
		Status     int     `json:"status"`
		Index      *uint64 `json:"index"`
		Entry      string  `json:"entry"`
		Pending    string  `json:"pending"`
		Signatures int     `json:"signatures"`
		Error      string  `json:"error"`
		Message    string  `json:"message"`
	} `json:"results"`
}

func postBatch(t *testing.T, url string, bodies ...[]byte) (int, batchAnswer, []byte) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"entries": rawMessages(bodies)})
	resp, err := http.Post(url+"/v1/entries/batch", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out batchAnswer
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, raw
}

// A batch is answered entry by entry, as each entry would have been alone: good entries are
// appended once, bad ones are refused with their own error and change nothing, duplicates
// (earlier in the log or earlier in the same batch) answer 200 with the first index, threshold
// links go to their co-signing group.
func TestSubmitBatch(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	leader, follower := tn.follower()
	s, other := newSigner(t), newSigner(t)
	code, out := post(t, leader.url(), s.body([]byte(`{"n":"earlier"}`)))
	if code != http.StatusCreated {
		t.Fatalf("earlier entry: %d %v", code, out)
	}
	earlier := uint64(out["index"].(float64))

	owner, dev := newParty(t), newParty(t)
	rb := []*party{newParty(t), newParty(t), newParty(t)}
	code, out = post(t, leader.url(), submitBody(rebuildLayout(owner, dev, rb, time.Now().Add(time.Hour)), "", owner.pem))
	if code != http.StatusCreated {
		t.Fatalf("layout: %d %v", code, out)
	}
	layoutID := out["entry"].(string)

	var bodies [][]byte
	for i := range 40 {
		bodies = append(bodies, s.body(fmt.Appendf(nil, `{"n":%d}`, i)))
	}
	wrongKey, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(s.envelope([]byte(`{"n":"wrong key"}`))), "public_keys": []string{other.pem}})
	bodies = append(bodies,
		wrongKey,                             // 40: 400 bad_signature
		[]byte(`{"envelope":{"payload":1}}`), // 41: 400 malformed_envelope
		s.body([]byte(`{"n":"earlier"}`)),    // 42: 200, index earlier
		s.body([]byte(`{"n":3}`)),            // 43: 200, index of 3
		submitBody(signDSSE(linkOf("rebuild", digestA), rb[0]), layoutID), // 44: 202
		// 45: 403: admission first assumes the stranger's signature holds under a
		// functionary's key (its signature checks are batched), then checks it at once.
		submitBody(signDSSE(linkOf("rebuild", digestA), newParty(t)), layoutID),
	)
	code, ans, raw := postBatch(t, follower.url(), bodies...)
	if code != http.StatusOK || len(ans.Results) != len(bodies) {
		t.Fatalf("batch: %d %s", code, raw)
	}
	seen := map[uint64]bool{earlier: true}
	for i := range 40 {
		r := ans.Results[i]
		if r.Status != http.StatusCreated || r.Index == nil || seen[*r.Index] || !strings.HasPrefix(r.Entry, "sha256:") {
			t.Fatalf("entry %d: %+v", i, r)
		}
		seen[*r.Index] = true
	}
	want := []struct {
		status int
		code   string
	}{{400, "bad_signature"}, {400, "malformed_envelope"}, {200, ""}, {200, ""}, {202, ""}, {403, "unauthorized_signer"}}
	for j, w := range want {
		r := ans.Results[40+j]
		if r.Status != w.status || r.Error != w.code || (w.code != "" && r.Message == "") {
			t.Fatalf("entry %d: %+v, want %d %s", 40+j, r, w.status, w.code)
		}
	}
	if *ans.Results[42].Index != earlier || *ans.Results[43].Index != *ans.Results[3].Index {
		t.Fatalf("duplicates answered with other indexes: %+v %+v", ans.Results[42], ans.Results[43])
	}
	if ans.Results[44].Pending == "" || ans.Results[44].Signatures != 1 {
		t.Fatalf("threshold link: %+v", ans.Results[44])
	}
	// 1 earlier entry, the layout, 40 new ones: on every member, and each new entry readable
	// from the member it was sent to.
	for _, m := range tn.members {
		tn.waitCheckpoint(m, 42)
		if got := m.node.ledger.Size(); got != 42 {
			t.Fatalf("%s: size %d, want 42", m.name, got)
		}
	}
	var entry struct {
		Index uint64 `json:"index"`
	}
	if c := getJSON(t, follower.url()+"/v1/entries/"+ans.Results[39].Entry, &entry); c != 200 || entry.Index != *ans.Results[39].Index {
		t.Fatalf("entry 39 on the member it was sent to: %d %+v", c, entry)
	}
}

// A batch the node cannot take as a whole is refused as a whole, and nothing changes.
func TestBadBatchChangesNothing(t *testing.T) {
	tn := newTestNet(t, 1, func(c *Config) { c.MaxRequestBytes = 1 << 20 })
	m := tn.leader()
	s := newSigner(t)
	one := string(s.body([]byte(`{"n":1}`)))
	tooMany := `{"entries":[` + strings.TrimSuffix(strings.Repeat(`{},`, maxBatchEntries+1), ",") + `]}`
	for _, tc := range []struct {
		name, body, ct string
		code           int
		err            string
	}{
		{"not json", `{`, "application/json", 400, "malformed_request"},
		{"unknown field", `{"entries":[` + one + `],"x":1}`, "application/json", 400, "malformed_request"},
		{"trailing data", `{"entries":[` + one + `]}{}`, "application/json", 400, "malformed_request"},
		{"no entries", `{"entries":[]}`, "application/json", 400, "batch_size"},
		{"too many entries", tooMany, "application/json", 400, "batch_size"},
		{"oversized", `{"entries":["` + strings.Repeat("x", 2<<20) + `"]}`, "application/json", 413, "too_large"},
		{"wrong content type", `{"entries":[` + one + `]}`, "text/plain", 415, "unsupported_media_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(m.url()+"/v1/entries/batch", tc.ct, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			var e map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode != tc.code || e["error"] != tc.err {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, e, tc.code, tc.err)
			}
		})
	}
	if m.node.ledger.Size() != 0 {
		t.Fatalf("a refused batch changed the log (size %d)", m.node.ledger.Size())
	}
}

// The leader takes relayed submissions only from a member, signed for relaying (a signature on
// the same body for forwarding does not do), and admits each one itself.
func TestRelayIsForMembersOnly(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	lead, member := tn.follower()
	s := newSigner(t)
	body := encodeBatch(ledger.KindEntries, [][]byte{s.body([]byte(`{"n":1}`))})
	outsider := newSigner(t)
	relay := func(priv ed25519.PrivateKey, domain string, body []byte) (int, []byte) {
		return memberCall(t, lead, "/v1/internal/submit", member, priv, domain, body)
	}
	if code, b := relay(outsider.priv, relayDomain, body); code != http.StatusForbidden {
		t.Fatalf("signed by a non-member: %d %s", code, b)
	}
	if code, b := relay(member.witPriv, forwardDomain, body); code != http.StatusForbidden {
		t.Fatalf("signed for forwarding: %d %s", code, b)
	}
	if code, b := relay(member.witPriv, relayDomain, []byte("junk")); code != http.StatusBadRequest {
		t.Fatalf("malformed batch: %d %s", code, b)
	}
	if lead.node.ledger.Size() != 0 {
		t.Fatal("a refused relay changed the log")
	}
	code, b := relay(member.witPriv, relayDomain, body)
	var out []batchResult
	if err := json.Unmarshal(b, &out); code != http.StatusOK || err != nil || len(out) != 1 || out[0].Status != http.StatusCreated {
		t.Fatalf("relay by a member: %d %s", code, b)
	}
}

// A submission as large as max_request_bytes allows reaches the leader through a member that
// relays it, even when it is larger than a relayed batch's usual size.
func TestLargeSubmissionRelayed(t *testing.T) {
	// Small limits keep the entry small: 1.7 MB, past twice the batch limit plus 1 MiB.
	tn := newTestNet(t, 3, func(c *Config) { c.MaxRequestBytes, c.MaxBatchBytes = 2<<20, 256<<10 })
	_, member := tn.follower()
	s := newSigner(t)
	body := s.body([]byte(`{"pad":"` + strings.Repeat("x", 5<<18) + `"}`))
	// A submission this large can outlast a leader on a slow machine; resubmitting after a 503
	// is what a client does, and is safe.
	code, out := post(t, member.url(), body)
	for i := 0; i < 5 && code == http.StatusServiceUnavailable; i++ {
		time.Sleep(time.Second)
		code, out = post(t, member.url(), body)
	}
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("a %d-byte submission through a member: %d %v", len(body), code, out)
	}
}

// A relayed or forwarded batch is sent again only when it certainly went nowhere: no leader known
// here, the node called is not the leader, or the call was abandoned for a new leader before it
// connected.
func TestLeaderMoved(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&Error{Status: 503, Code: "no_leader"}, true},
		{&Error{Status: 503, Code: "leader_changed"}, true}, // abandoned before it connected
		{fmt.Errorf("relay on node2: the leader changed during the call: %w", context.Canceled), false},
		{fmt.Errorf("relay: %w", &leaderRefused{msg: "503", code: "not_leader"}), true},
		{&leaderRefused{msg: "503", code: "unavailable"}, false},
		{&leaderRefused{msg: "413", code: "too_large"}, false},
		{&Error{Status: 503, Code: "timeout"}, false},
		{errors.New("connection reset"), false},
		{nil, false},
	} {
		if got := leaderMoved(tc.err); got != tc.want {
			t.Errorf("leaderMoved(%v) = %v", tc.err, got)
		}
	}
}

// Entries proposed together beyond consensus.SplitBytes go to raft as several commands, back to
// back: each entry is answered with its own index and every member holds them all.
func TestLargeBatchIsSplitIntoCommands(t *testing.T) {
	// Commands over SplitBytes are refused here, and one proposer drains the whole queue.
	tn := newTestNet(t, 3, func(c *Config) {
		c.Consensus.MaxCommandBytes = consensus.SplitBytes
		c.ProposeWorkers = 1
	})
	leader := tn.leader()
	s := newSigner(t)
	pad := strings.Repeat("x", 1500)
	var bodies [][]byte
	for i := range 400 { // about 900 KiB of records: at least four commands
		bodies = append(bodies, s.body(fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad)))
	}
	before := leader.node.ledger.AppliedIndex()
	code, ans, raw := postBatch(t, leader.url(), bodies...)
	if code != http.StatusOK || len(ans.Results) != len(bodies) {
		t.Fatalf("batch: %d %.300s", code, raw)
	}
	seen := map[uint64]bool{}
	var last uint64
	for i, r := range ans.Results {
		if r.Status != http.StatusCreated || r.Index == nil || seen[*r.Index] {
			t.Fatalf("entry %d: %+v", i, r)
		}
		seen[*r.Index] = true
		last = max(last, *r.Index+1)
	}
	if last != uint64(len(bodies)) {
		t.Fatalf("%d entries into an empty log, the last at %d", len(bodies), last-1)
	}
	if cmds := leader.node.ledger.AppliedIndex() - before; cmds < 4 {
		t.Fatalf("400 entries of 2 KiB took %d raft commands, want at least 4", cmds)
	}
	for _, m := range tn.members {
		tn.waitCheckpoint(m, last)
		if got := m.node.ledger.Size(); got != last {
			t.Fatalf("%s: size %d, want %d", m.name, got, last)
		}
	}
}

// Single submissions that reach the leader together are admitted together, their signatures
// checked in one batch, and each is answered as if alone.
func TestLeaderAdmitsSingleSubmissionsTogether(t *testing.T) {
	tn := newTestNet(t, 1, nil)
	m := tn.leader()
	bodies := entryBodies(t, 64)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, len(bodies))
	for i, body := range bodies {
		wg.Go(func() {
			<-start
			errs[i] = submit(http.DefaultClient, m.url(), body)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("submission %d: %v", i, err)
		}
	}
	var count, sum float64
	resp, err := http.Get(m.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(metrics), "\n") {
		if v, ok := strings.CutPrefix(line, "witnessnet_admitted_together_count "); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "witnessnet_admitted_together_sum "); ok {
			sum, _ = strconv.ParseFloat(v, 64)
		}
	}
	if sum != float64(len(bodies)) || count == 0 || count >= sum {
		t.Fatalf("%v submissions admitted in %v batches; want all %d, in fewer batches than submissions", sum, count, len(bodies))
	}
	t.Logf("%d single submissions admitted in %v batches", len(bodies), count)
}

// BatchRequest writes a body the batch endpoint decodes into the submissions it was given.
func TestBatchRequest(t *testing.T) {
	subs := [][]byte{[]byte(`{"envelope":{"payload":"e30=","payloadType":"t","signatures":[]}}`), []byte(`{"a":[1,2]}`), []byte(`{}`)}
	body := BatchRequest(subs)
	if len(body) != cap(body) {
		t.Errorf("the buffer was sized %d for %d bytes", cap(body), len(body))
	}
	req, err := decodeBatchRequest(body)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if len(req.Entries) != len(subs) {
		t.Fatalf("%s: %d entries, want %d", body, len(req.Entries), len(subs))
	}
	for i, e := range req.Entries {
		if !bytes.Equal(e, subs[i]) {
			t.Errorf("entry %d: %s, want %s", i, e, subs[i])
		}
	}
}
