package witness

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// foreignLog is a log this witness witnesses: its signer and trees to make checkpoints from.
type foreignLog struct {
	origin   string
	signer   note.Signer
	verifier note.Verifier
}

func newForeignLog(t *testing.T, origin string) foreignLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return foreignLog{origin: origin, signer: s, verifier: v}
}

func (l foreignLog) checkpoint(size uint64, root []byte, signers ...note.Signer) []byte {
	if len(signers) == 0 {
		signers = []note.Signer{l.signer}
	}
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(root))
	signed, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		panic(err)
	}
	return signed
}

func addBody(old uint64, proof [][]byte, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		fmt.Fprintln(&b, base64.StdEncoding.EncodeToString(h))
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

type addServer struct {
	t        *testing.T
	path     string
	skey     string
	verifier note.Verifier
	logs     LogKeys
	w        *Witness
	srv      *httptest.Server
}

func newAddServer(t *testing.T, logs ...foreignLog) *addServer {
	t.Helper()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "witness.example/w1")
	cv, _ := fnote.VKeyToCosignatureV1(vkey)
	verifier, err := fnote.NewVerifierForCosignatureV1(cv)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string][]note.Verifier{}
	for _, l := range logs {
		known[l.origin] = append(known[l.origin], l.verifier)
	}
	s := &addServer{t: t, path: filepath.Join(t.TempDir(), "witness.db"), skey: skey, verifier: verifier,
		logs: func(origin string) ([]note.Verifier, bool) { v, ok := known[origin]; return v, ok }}
	s.open()
	t.Cleanup(func() { s.srv.Close(); s.w.Close() })
	return s
}

func (s *addServer) open() {
	w, err := Open(s.path, s.skey)
	if err != nil {
		s.t.Fatal(err)
	}
	s.w = w
	s.srv = httptest.NewServer(w.Handler(s.logs, nil))
}

// restart closes the witness and its server and opens both again on the same state file.
func (s *addServer) restart() {
	s.srv.Close()
	s.w.Close()
	s.open()
}

func (s *addServer) post(body []byte) (int, string, string) {
	resp, err := http.Post(s.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func (s *addServer) state(origin string) string {
	st, err := s.w.Last(origin)
	if err != nil {
		s.t.Fatal(err)
	}
	if st == nil {
		return "none"
	}
	return fmt.Sprintf("%d %s", st.Size, b64(st.Root))
}

// TestAddCheckpointStatusRows walks every row of the tlog-witness status table over a real
// witness.db: each request is answered with the spec's status, a refusal leaves the stored state
// as it was, and the state survives a restart.
func TestAddCheckpointStatusRows(t *testing.T) {
	log := newForeignLog(t, "example.com/log")
	other := newForeignLog(t, "example.com/other")
	impostor := newForeignLog(t, "example.com/log") // same name, other key
	s := newAddServer(t, log)
	a, b := newTree(40, "a"), newTree(40, "b")

	type row struct {
		name        string
		body        []byte
		status      int
		contentType string
		respBody    string // exact body, when set
		state       string // stored state afterwards, "" = unchanged
	}
	tampered := bytes.Replace(log.checkpoint(10, a.root(10)), []byte("\n10\n"), []byte("\n11\n"), 1)
	rows := []row{
		{name: "unknown origin", body: addBody(0, nil, other.checkpoint(5, a.root(5))), status: 404},
		{name: "not signed by a trusted key", body: addBody(0, nil, log.checkpoint(5, a.root(5), impostor.signer)), status: 403},
		{name: "log signature does not verify", body: addBody(0, nil, tampered), status: 403},
		{name: "no old line", body: []byte("\n" + string(log.checkpoint(5, a.root(5)))), status: 400},
		{name: "old with a leading zero", body: append([]byte("old 00\n\n"), log.checkpoint(5, a.root(5))...), status: 400},
		{name: "proof line not a hash", body: append([]byte("old 0\nAAAA\n\n"), log.checkpoint(5, a.root(5))...), status: 400},
		{name: "no checkpoint", body: []byte("old 0\n\n"), status: 400},
		{name: "old larger than size", body: addBody(7, nil, log.checkpoint(5, a.root(5))), status: 400},
		{name: "first contact with old != 0", body: addBody(3, a.consistency(3, 10), log.checkpoint(10, a.root(10))),
			status: 409, contentType: "text/x.tlog.size", respBody: "0\n"},
		{name: "size 0 with a non-empty root", body: addBody(0, nil, log.checkpoint(0, a.root(3))), status: 422},
		{name: "proof sent from old 0", body: addBody(0, a.consistency(5, 10), log.checkpoint(10, a.root(10))), status: 422},
		{name: "first contact", body: addBody(0, nil, log.checkpoint(10, a.root(10))), status: 200, state: "10 " + b64(a.root(10))},
		{name: "old is not the last cosigned size", body: addBody(5, a.consistency(5, 20), log.checkpoint(20, a.root(20))),
			status: 409, contentType: "text/x.tlog.size", respBody: "10\n"},
		{name: "bad consistency proof", body: addBody(10, a.consistency(9, 20), log.checkpoint(20, a.root(20))), status: 422},
		{name: "fork with its own valid proof", body: addBody(10, b.consistency(10, 20), log.checkpoint(20, b.root(20))), status: 422},
		{name: "same size, another root", body: addBody(10, nil, log.checkpoint(10, b.root(10))), status: 422},
		{name: "same checkpoint again", body: addBody(10, nil, log.checkpoint(10, a.root(10))), status: 200, state: "10 " + b64(a.root(10))},
		{name: "consistent growth", body: addBody(10, a.consistency(10, 20), log.checkpoint(20, a.root(20))), status: 200, state: "20 " + b64(a.root(20))},
		{name: "rollback", body: addBody(20, nil, log.checkpoint(15, a.root(15))), status: 400},
	}
	want := s.state(log.origin)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			status, ct, body := s.post(r.body)
			if status != r.status {
				t.Fatalf("status %d (%q), want %d", status, body, r.status)
			}
			if r.contentType != "" && ct != r.contentType {
				t.Errorf("Content-Type %q, want %q", ct, r.contentType)
			}
			if r.respBody != "" && body != r.respBody {
				t.Errorf("body %q, want %q", body, r.respBody)
			}
			if r.state != "" {
				want = r.state
			}
			if got := s.state(log.origin); got != want {
				t.Fatalf("stored state %q, want %q", got, want)
			}
			if status == 200 {
				// The answer is a cosignature/v1 line over the checkpoint the log signed.
				cp := r.body[bytes.Index(r.body, []byte("\n\n"))+2:]
				if _, err := note.Open(append(append([]byte(nil), cp...), body...), note.VerifierList(s.verifier)); err != nil {
					t.Fatalf("cosignature %q does not verify: %v", body, err)
				}
			}
		})
	}
	s.restart()
	if got := s.state(log.origin); got != want {
		t.Fatalf("after restart: %q, want %q", got, want)
	}
	if status, _, body := s.post(addBody(10, a.consistency(10, 30), log.checkpoint(30, a.root(30)))); status != 409 || body != "20\n" {
		t.Fatalf("after restart, old 10: %d %q", status, body)
	}
	if status, _, _ := s.post(addBody(20, b.consistency(20, 30), log.checkpoint(30, b.root(30)))); status != 422 {
		t.Fatalf("after restart, a fork: %d", status)
	}
}

// TestAddCheckpointConcurrent: many requests advancing from one state at once; check and persist
// are one transaction, so exactly one wins and every other is told the new size.
func TestAddCheckpointConcurrent(t *testing.T) {
	log := newForeignLog(t, "example.com/log")
	s := newAddServer(t, log)
	a, b := newTree(40, "a"), newTree(40, "b")
	if status, _, body := s.post(addBody(0, nil, log.checkpoint(10, a.root(10)))); status != 200 {
		t.Fatalf("first contact: %d %q", status, body)
	}
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	bodies := make([]string, 16)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, size := a, uint64(20+i)
			if i%2 == 1 {
				tr = b // forks of a: must never be cosigned once a's growth is
			}
			statuses[i], _, bodies[i] = s.post(addBody(10, tr.consistency(10, size), log.checkpoint(size, tr.root(size))))
		}()
	}
	wg.Wait()
	won := 0
	for i, st := range statuses {
		switch {
		case st == 200:
			won++
		case st == 409 && strings.HasSuffix(bodies[i], "\n"):
		case st == 422 && i%2 == 1:
		default:
			t.Errorf("request %d: %d %q", i, st, bodies[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d requests advanced from the same state, want 1 (statuses %v)", won, statuses)
	}
}

func FuzzParseAddRequest(f *testing.F) {
	f.Add([]byte("old 0\n\nexample.com/log\n1\nAAAA\n\n\u2014 x y\n"))
	f.Add(addBody(3, [][]byte{make([]byte, 32)}, []byte("cp\n")))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseAddRequest(body)
		if err != nil {
			return
		}
		if got := addBody(req.Old, req.Proof, req.Checkpoint); !bytes.Equal(got, body) {
			t.Fatalf("round trip: %q vs %q", got, body)
		}
	})
}
