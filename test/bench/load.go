package main

import (
	"bytes"
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
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"

	"github.com/witnessnet/witnessnet/internal/node"
	"github.com/witnessnet/witnessnet/internal/proccpu"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// entrySigner makes signed ~1 KiB DSSE entries, as a submitter would.
type entrySigner struct {
	priv ed25519.PrivateKey
	pem  string
	id   string
}

func newEntrySigner() *entrySigner {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha256.Sum256(der)
	return &entrySigner{priv: priv, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), id: hex.EncodeToString(h[:])}
}

// bodies makes n distinct POST /v1/entries bodies; tag keeps runs distinct from each other.
func (s *entrySigner) bodies(n int, tag string) [][]byte {
	const typ = "application/vnd.in-toto+json"
	pad := bytes.Repeat([]byte("x"), 640)
	out := make([][]byte, n)
	for i := range out {
		payload := fmt.Appendf(nil, `{"_type":"bench","run":%q,"n":%d,"pad":"%s"}`, tag, i, pad)
		sig := ed25519.Sign(s.priv, verify.PAE(typ, payload))
		env, _ := json.Marshal(map[string]any{
			"payloadType": typ, "payload": base64.StdEncoding.EncodeToString(payload),
			"signatures": []map[string]string{{"keyid": s.id, "sig": base64.StdEncoding.EncodeToString(sig)}},
		})
		out[i], _ = json.Marshal(map[string]any{"envelope": json.RawMessage(env), "public_keys": []string{s.pem}})
	}
	return out
}

// loadResult is one load run's outcome.
type loadResult struct {
	entries int
	failed  int
	elapsed time.Duration
	cpu     time.Duration   // the process's CPU time during the run: every node and the load generator
	sys     time.Duration   // the part of cpu spent in the kernel
	lat     []time.Duration // sorted
	indexes []uint64
	started []time.Time
	err     error // the first failure, if any

	byMember   map[string]time.Duration // CPU time sampled in each member's goroutines (profiled)
	unlabeled  time.Duration            // CPU time sampled outside every member
	profileErr error
}

func (r *loadResult) rate() float64 { return float64(r.entries) / r.elapsed.Seconds() }

// cpuShare says what the run cost in CPU: per entry, the kernel's part of it, and the cores busy
// on average.
func (r *loadResult) cpuShare() string {
	if r.cpu <= 0 || r.entries == 0 {
		return "CPU not measured"
	}
	perEntry := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(r.entries) }
	return fmt.Sprintf("CPU %.0f µs/entry (%.0f in the kernel), %.2f cores busy", perEntry(r.cpu), perEntry(r.sys), r.cpu.Seconds()/r.elapsed.Seconds())
}

func (r *loadResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[int(q*float64(len(r.lat)-1))]
}

func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxIdleConns: conns * 8}}
}

func submit(c *http.Client, url string, body []byte) (uint64, error) {
	resp, err := c.Post(url+"/v1/entries", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", resp.Status, data)
	}
	var out struct {
		Index uint64 `json:"index"`
	}
	err = json.Unmarshal(data, &out)
	return out.Index, err
}

// closedLoop runs `clients` submitters spread over urls, one POST /v1/entries per body, until
// every body is acknowledged.
func closedLoop(urls []string, bodies [][]byte, clients int, progress func(int)) *loadResult {
	one := func(c *http.Client, url string, chunk [][]byte) error {
		_, err := submit(c, url, chunk[0])
		return err
	}
	return closedLoopBy(urls, bodies, clients, 1, one, progress)
}

// openLoop offers bodies at a fixed rate (entries/s), whatever the answers' latency.
func openLoop(urls []string, bodies [][]byte, rate int, progress func(int)) *loadResult {
	c := newClient(256)
	var mu sync.Mutex
	var done atomic.Int64
	res := &loadResult{}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i, b := range bodies {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			idx, err := submit(c, urls[i%len(urls)], b)
			d := time.Since(t0)
			mu.Lock()
			if err != nil {
				res.failed++
			} else {
				res.lat = append(res.lat, d)
				res.indexes = append(res.indexes, idx)
				res.started = append(res.started, t0)
			}
			mu.Unlock()
			if progress != nil {
				progress(int(done.Add(1)))
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.entries = len(res.lat)
	slices.Sort(res.lat)
	return res
}

// submitBatch posts bodies as one POST /v1/entries/batch and fails unless every entry is in
// the log.
func submitBatch(c *http.Client, url string, bodies [][]byte) error {
	// Built around the bodies in a buffer of its size (grown entry by entry, the request was
	// copied ~10 times: 2 µs per entry of the load generator's CPU, which the nodes share).
	req := node.BatchRequest(bodies)
	resp, err := c.Post(url+"/v1/entries/batch", "application/json", bytes.NewReader(req))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%s: %s", resp.Status, data)
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
			err = retryable{err}
		}
		return err
	}
	var out struct {
		Results []struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return err
	}
	if len(out.Results) != len(bodies) {
		return fmt.Errorf("%d results for %d entries", len(out.Results), len(bodies))
	}
	for _, r := range out.Results {
		if r.Status != http.StatusCreated && r.Status != http.StatusOK {
			err := fmt.Errorf("an entry of the batch: %d %s", r.Status, r.Message)
			if r.Status == http.StatusServiceUnavailable || r.Status == http.StatusTooManyRequests {
				err = retryable{err}
			}
			return err
		}
	}
	return nil
}

// retryable is a refusal the API says to retry: 503 (not committed, e.g. the leader changed;
// resubmitting the same envelope is safe) or 429 (queue full).
type retryable struct{ error }

// closedLoopBatched runs `clients` submitters spread over urls, each posting `per` bodies at a
// time with POST /v1/entries/batch, until every body is acknowledged.
func closedLoopBatched(urls []string, bodies [][]byte, clients, per int, progress func(int)) *loadResult {
	return closedLoopBy(urls, bodies, clients, per, submitBatch, progress)
}

// closedLoopBy runs `clients` submitters spread over urls, each sending `per` bodies at a time
// with send, until every body is acknowledged. Latencies are per request (every entry of a
// request waits for the whole request).
func closedLoopBy(urls []string, bodies [][]byte, clients, per int, send func(*http.Client, string, [][]byte) error, progress func(int)) *loadResult {
	c := newClient(clients)
	var next, done atomic.Int64
	var mu sync.Mutex
	res := &loadResult{}
	start := time.Now()
	user0, sys0 := proccpu.Split()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(per)) - int64(per))
				if lo >= len(bodies) {
					return
				}
				chunk := bodies[lo:min(lo+per, len(bodies))]
				t0 := time.Now()
				err := send(c, urls[w%len(urls)], chunk)
				d := time.Since(t0)
				// The nodes share this process's heap: what was sent is let go, so that their
				// garbage collector does not work on request bodies a node never holds.
				n := len(chunk)
				clear(chunk)
				mu.Lock()
				if err != nil {
					res.failed += n
					if res.err == nil {
						res.err = err
					}
				} else {
					res.entries += n
					res.lat = append(res.lat, d)
				}
				mu.Unlock()
				if progress != nil {
					progress(int(done.Add(int64(n))))
				}
			}
		})
	}
	wg.Wait()
	user, sys := proccpu.Split()
	res.elapsed, res.cpu, res.sys = time.Since(start), user+sys-user0-sys0, sys-sys0
	slices.Sort(res.lat)
	return res
}

// profiled runs a measured load under the CPU profiler and splits the run's CPU by the member
// that spent it (each member's goroutines carry a "member" label, localnet.Network.Start), into
// loadResult.byMember. With -cpuprofile the profile of that run alone is also written to
// <dir>/<name>.pprof: the network's set-up, the signing of the entries and any warm-up stay out
// of it, as they stay out of the figures.
func profiled(o options, name string, run func() *loadResult) *loadResult {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		fmt.Fprintf(os.Stderr, "bench: no profile of %s: %v\n", name, err)
		r := run()
		r.profileErr = err
		return r
	}
	r := run()
	pprof.StopCPUProfile()
	if r.byMember, r.unlabeled, r.profileErr = cpuByLabel(buf.Bytes(), "member"); r.profileErr != nil {
		fmt.Fprintf(os.Stderr, "bench: profile of %s: %v\n", name, r.profileErr)
	}
	if o.profileDir == "" {
		return r
	}
	err := os.MkdirAll(o.profileDir, 0o755)
	if err == nil {
		err = os.WriteFile(filepath.Join(o.profileDir, name+".pprof"), buf.Bytes(), 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: profile of %s: %v\n", name, err)
	}
	return r
}

// cpuByLabel sums a CPU profile's samples by the value of one label; samples without it are
// returned apart (the runtime's collector and scavenger, the load generator).
func cpuByLabel(data []byte, key string) (map[string]time.Duration, time.Duration, error) {
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, 0, err
	}
	at := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "cpu" && t.Unit == "nanoseconds" })
	if at < 0 {
		return nil, 0, fmt.Errorf("no CPU time in the profile (sample types %v)", p.SampleType)
	}
	by := map[string]time.Duration{}
	var rest time.Duration
	for _, s := range p.Sample {
		d := time.Duration(s.Value[at])
		if v := s.Label[key]; len(v) > 0 {
			by[v[0]] += d
		} else {
			rest += d
		}
	}
	return by, rest, nil
}

// memberShare says what each member's goroutines cost per entry in the run's profile, the
// leader first; what no member spent (the collector, the load generator) comes last.
func (r *loadResult) memberShare(leader string) string {
	if r.entries == 0 || (len(r.byMember) == 0 && r.unlabeled == 0) {
		return ""
	}
	perEntry := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(r.entries) }
	names := slices.Sorted(maps.Keys(r.byMember))
	var parts []string
	if d, ok := r.byMember[leader]; ok {
		parts = append(parts, fmt.Sprintf("leader %s %.0f", leader, perEntry(d)))
	}
	for _, n := range names {
		if n != leader {
			parts = append(parts, fmt.Sprintf("%s %.0f", n, perEntry(r.byMember[n])))
		}
	}
	parts = append(parts, fmt.Sprintf("no member (collector, load generator) %.0f", perEntry(r.unlabeled)))
	return "; CPU µs/entry by member, from the run's profile: " + strings.Join(parts, ", ")
}
