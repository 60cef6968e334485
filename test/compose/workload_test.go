package compose

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// fakeLog is an in-memory stand-in for the node API, only for checking that the workload and
// the checks agree with each other on a log that is correct by construction. It verifies the
// workload's envelopes the way DSSE defines, so a broken envelope fails the test.
type fakeLog struct {
	mu     sync.Mutex
	leaves [][]byte
	index  map[string]uint64
	// flaky: every third submission is applied but answered 503, as a crashed response would be.
	flaky int
	// closed refuses submissions once the test has stopped its workload; inflight lets it wait
	// for the handlers still running.
	closed   bool
	inflight sync.WaitGroup
}

func (f *fakeLog) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.inflight.Wait()
}

func (f *fakeLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.inflight.Add(1)
	defer f.inflight.Done()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/entries":
		f.submit(w, r)
	case strings.HasPrefix(r.URL.Path, "/v1/entries/"):
		i, _ := strconv.ParseUint(strings.TrimPrefix(r.URL.Path, "/v1/entries/"), 10, 64)
		f.mu.Lock()
		defer f.mu.Unlock()
		if i >= uint64(len(f.leaves)) {
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"index": i, "leaf": base64.StdEncoding.EncodeToString(f.leaves[i])})
	case strings.HasPrefix(r.URL.Path, "/tile/entries/"):
		f.mu.Lock()
		defer f.mu.Unlock()
		path, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/tile/entries/"), ".p/")
		n, _ := strconv.ParseUint(strings.NewReplacer("x", "", "/", "").Replace(path), 10, 64)
		var out []byte
		for _, l := range f.leaves[min(n*256, uint64(len(f.leaves))):min((n+1)*256, uint64(len(f.leaves)))] {
			out = binary.BigEndian.AppendUint16(out, uint16(len(l)))
			out = append(out, l...)
		}
		_, _ = w.Write(out)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeLog) submit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Envelope   json.RawMessage `json:"envelope"`
		PublicKeys []string        `json:"public_keys"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.PublicKeys) != 1 {
		http.Error(w, `{"error":"malformed_request"}`, http.StatusBadRequest)
		return
	}
	var env dsseEnvelope
	blk, _ := pem.Decode([]byte(req.PublicKeys[0]))
	if err := json.Unmarshal(req.Envelope, &env); err != nil || blk == nil || len(env.Signatures) != 1 {
		http.Error(w, `{"error":"malformed_envelope"}`, http.StatusBadRequest)
		return
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if k, ok := pub.(ed25519.PublicKey); err != nil || !ok || !ed25519.Verify(k, pae(env.PayloadType, env.Payload), env.Signatures[0].Sig) {
		http.Error(w, `{"error":"bad_signature"}`, http.StatusBadRequest)
		return
	}
	id := EnvelopeIdentity(req.Envelope)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		http.Error(w, `{"error":"closed"}`, http.StatusServiceUnavailable)
		return
	}
	i, dup := f.index[id]
	if !dup {
		i = uint64(len(f.leaves))
		f.index[id] = i
		f.leaves = append(f.leaves, leafOf(string(req.Envelope)))
		f.flaky++
	}
	flaky := f.flaky%3 == 0 && !dup
	f.mu.Unlock()
	if flaky {
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	status := http.StatusCreated
	if dup {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"index": i, "entry": id})
}

func TestWorkloadAgainstFake(t *testing.T) {
	fake := &fakeLog{index: map[string]uint64{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	rec := NewRecorder()
	w, err := NewWorkload(WorkloadConfig{
		Targets:  []Target{{Name: "a", URL: srv.URL}, {Name: "b", URL: srv.URL}},
		Clients:  4,
		Interval: 2 * time.Millisecond,
	}, rec)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for Summarize(rec.Ops()).ReadFound < 20 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polls the recorder until enough happened, with a deadline
	}
	w.Stop()
	fake.close()
	ops := rec.Ops()
	s := Summarize(ops)
	if s.Acked < 20 || s.ReadFound < 20 || s.AppendFailed > 0 {
		t.Fatalf("summary %+v", s)
	}
	api := API{Name: "a", URL: srv.URL, HTTP: srv.Client()}
	leaves, err := api.Leaves(context.Background(), uint64(len(fake.leaves)))
	if err != nil {
		t.Fatal(err)
	}
	final, errs := CheckLogs(ops, []NodeLog{{Node: "a", Leaves: leaves}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if res, n := CheckLinearizable(ops, final, time.Minute); res != porcupine.Ok {
		t.Fatalf("%d operations: %s", n, res)
	}
	if errs := MonotonicReads(ops, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
}
