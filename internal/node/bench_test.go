package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/witnessnet/witnessnet/internal/proccpu"
	"github.com/witnessnet/witnessnet/internal/procs"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// benchNet starts a quiet 3-node loopback network with production timing. The process runs with
// the GOMAXPROCS a witness runs with (see package procs): one more than -cpu gives it.
func benchNet(b *testing.B) *testNet {
	prev := runtime.GOMAXPROCS(procs.Default())
	b.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	tn := newTestNet(b, 3, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		c.CheckpointInterval = 200 * time.Millisecond
		c.Consensus.HeartbeatTimeout = 0
		c.Consensus.ElectionTimeout = 0
		c.Consensus.LeaderLeaseTimeout = 0
	})
	tn.leader()
	return tn
}

// entryBodies makes n distinct POST /v1/entries bodies with ~1 KiB DSSE envelopes.
func entryBodies(b testing.TB, n int) [][]byte {
	s := newSigner(b)
	pad := bytes.Repeat([]byte("x"), 640)
	out := make([][]byte, n)
	for i := range out {
		out[i] = s.body(fmt.Appendf(nil, `{"_type":"bench","n":%d,"pad":"%s"}`, i, pad))
	}
	return out
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) report(b *testing.B) {
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return
	}
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// mark is when a measured run started: the wall clock, the process's CPU time so far (and the
// kernel's part of it) and, given a network, the raft index its leader had applied.
type mark struct {
	at       time.Time
	cpu, sys time.Duration
	applied  uint64
}

func markNow() mark {
	user, sys := proccpu.Split()
	return mark{at: time.Now(), cpu: user + sys, sys: sys}
}

func markNet(tn *testNet) mark {
	m := markNow()
	m.applied = tn.leader().node.ledger.AppliedIndex()
	return m
}

// reportAppend reports an append run that started at start: throughput, latency quantiles, the
// CPU time per entry (and the kernel's part of it, sys-µs/entry) and the cores busy on average
// (every node and the load generator share the process) and, given the network, entries per raft
// command. Failed submissions fail the benchmark.
func reportAppend(b *testing.B, tn *testNet, start mark, lat *latencies, failed int64) {
	wall := time.Since(start.at)
	b.ReportMetric(float64(b.N)/wall.Seconds(), "entries/s")
	user, sys := proccpu.Split()
	if cpu := user + sys - start.cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/entry")
		b.ReportMetric(float64((sys-start.sys).Microseconds())/float64(b.N), "sys-µs/entry")
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
	}
	lat.report(b)
	if failed > 0 {
		b.Fatalf("%d submissions failed", failed)
	}
	if tn == nil {
		return
	}
	if ai := tn.leader().node.ledger.AppliedIndex(); ai > start.applied {
		b.ReportMetric(float64(b.N)/float64(ai-start.applied), "entries/command")
	}
}

// benchClient is the load generator's HTTP client: conns connections per node, and a deadline on
// every request, so that a stuck request fails the benchmark instead of hanging it.
func benchClient(conns int) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
}

func submit(client *http.Client, url string, body []byte) error {
	resp, err := client.Post(url+"/v1/entries", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// BenchmarkAppend3Nodes measures appends through the HTTP API of a 3-node loopback network:
// 1 KiB DSSE entries, signatures checked on admission, submitted by benchClients concurrent clients spread
// over all nodes; latency is submit-to-201 (committed by a raft quorum).
func BenchmarkAppend3Nodes(b *testing.B) {
	tn := benchNet(b)
	bodies := entryBodies(b, b.N)
	client := benchClient(benchClients)
	var lat latencies
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := markNet(tn)
	var wg sync.WaitGroup
	for w := range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := tn.members[w%3].url()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := submit(client, url, bodies[i]); err != nil {
					failed.Add(1)
					continue
				}
				lat.add(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	reportAppend(b, tn, start, &lat, failed.Load())
}

// BenchmarkAppend3NodesAtRate offers a fixed open-loop load (rate entries/s) and reports the
// commit latency it sees; run it at about half the throughput BenchmarkAppend3Nodes reaches.
func BenchmarkAppend3NodesAtRate(b *testing.B) {
	for _, rate := range []int{1000, 3000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			tn := benchNet(b)
			bodies := entryBodies(b, b.N)
			client := benchClient(256)
			var lat latencies
			var failed atomic.Int64
			interval := time.Second / time.Duration(rate)
			b.ResetTimer()
			start := markNow()
			var wg sync.WaitGroup
			for i := range b.N {
				if d := time.Until(start.at.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					t0 := time.Now()
					if err := submit(client, tn.members[i%3].url(), bodies[i]); err != nil {
						failed.Add(1)
						return
					}
					lat.add(time.Since(t0))
				}()
			}
			wg.Wait()
			reportAppend(b, nil, start, &lat, failed.Load())
		})
	}
}

// benchClients is how many closed-loop clients BenchmarkAppend3Nodes runs: enough in flight that
// batching, not the clients' round trips, bounds throughput.
const benchClients = 256

// BenchmarkAppend3NodesBatched is BenchmarkAppend3Nodes with POST /v1/entries/batch: 12
// closed-loop clients over all nodes, 200 entries per request; latency is per request. The
// network first takes benchWarmUp entries the same way, unmeasured, so that the figures are
// those of a running network rather than of one growing its heap for batches; the bench
// command's batched rows warm up the same way.
func BenchmarkAppend3NodesBatched(b *testing.B) {
	const clients, per = 12, 200
	tn := benchNet(b)
	client := benchClient(clients)
	if failed := postBatches(tn, client, entryBodies(b, benchWarmUp), clients, per, &latencies{}); failed > 0 {
		b.Fatalf("%d submissions failed while warming up", failed)
	}
	bodies := entryBodies(b, b.N)
	var lat latencies
	b.ResetTimer()
	start := markNet(tn)
	failed := postBatches(tn, client, bodies, clients, per, &lat)
	reportAppend(b, tn, start, &lat, failed)
}

// benchWarmUp is how many entries BenchmarkAppend3NodesBatched appends before it measures.
const benchWarmUp = 20000

// postBatches submits bodies with `clients` closed-loop clients over the members, per entries
// per POST /v1/entries/batch, and returns how many were not appended. A body is dropped once
// its request is built: the load generator shares the nodes' heap, and holding what it has
// sent would make the nodes' garbage collector work on tens of MiB that a node never holds.
func postBatches(tn *testNet, client *http.Client, bodies [][]byte, clients, per int, lat *latencies) int64 {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			url := tn.members[w%3].url()
			for {
				lo := int(next.Add(int64(per)) - int64(per))
				if lo >= len(bodies) {
					return
				}
				chunk := bodies[lo:min(lo+per, len(bodies))]
				n := len(chunk)
				req := BatchRequest(chunk)
				clear(chunk)
				t0 := time.Now()
				resp, err := client.Post(url+"/v1/entries/batch", "application/json", bytes.NewReader(req))
				if err != nil {
					failed.Add(int64(n))
					continue
				}
				var out struct {
					Results []struct{ Status int } `json:"results"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				for _, r := range out.Results {
					if r.Status != http.StatusCreated {
						failed.Add(1)
					}
				}
				if len(out.Results) != n {
					failed.Add(int64(n))
				}
				lat.add(time.Since(t0))
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// BenchmarkAdmit measures admission of one ~1 KiB DSSE submission (parse the request and the
// envelope, check its signature, build the record) on one core.
func BenchmarkAdmit(b *testing.B) {
	n := &Node{}
	body := entryBodies(b, 1)[0]
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := n.admit(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmitBatch measures admission of 200 such submissions as POST /v1/entries/batch
// admits them: on every core, with the signatures checked in batches (admitAll); and of 200
// whose signatures do not verify under the keys sent, which fall back to checks one at a time.
func BenchmarkAdmitBatch(b *testing.B) {
	const per = 200
	n := &Node{}
	valid := entryBodies(b, per)
	s, other := newSigner(b), newSigner(b)
	var invalid [][]byte
	for i := range per {
		env := s.envelope(fmt.Appendf(nil, `{"_type":"bench","n":%d,"pad":"%0640d"}`, i, 0))
		body, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(env), "public_keys": []string{other.pem}})
		invalid = append(invalid, body)
	}
	for _, c := range []struct {
		name   string
		bodies [][]byte
	}{{"valid", valid}, {"invalid", invalid}} {
		b.Run(c.name, func(b *testing.B) {
			errs := make([]error, per)
			start := markNow()
			for b.Loop() {
				admitAll(per, func(i int, a *intoto.Admission) { _, errs[i] = n.admit(c.bodies[i], a) })
			}
			for i, err := range errs {
				if (err == nil) != (c.name == "valid") {
					b.Fatalf("entry %d: %v", i, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*per), "µs/entry")
			if cpu := proccpu.Used() - start.cpu; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*per), "cpu-µs/entry")
			}
		})
	}
}
