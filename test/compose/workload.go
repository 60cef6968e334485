package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one node the workload talks to.
type Target struct {
	Name string
	URL  string
}

// WorkloadConfig shapes the workload.
type WorkloadConfig struct {
	Targets        []Target
	Clients        int           // concurrent clients
	Interval       time.Duration // each client starts at most one operation per interval
	ReadFraction   float64       // share of operations that are reads
	RequestTimeout time.Duration // one HTTP request
	OpTimeout      time.Duration // one append, retries included; then its outcome is unknown
}

func (c WorkloadConfig) withDefaults() WorkloadConfig {
	if c.Clients <= 0 {
		c.Clients = 6
	}
	if c.Interval <= 0 {
		c.Interval = 150 * time.Millisecond
	}
	if c.ReadFraction <= 0 {
		c.ReadFraction = 0.25
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 3 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 12 * time.Second
	}
	return c
}

// Validate reports a workload that cannot run.
func (c WorkloadConfig) Validate() error {
	if len(c.Targets) == 0 {
		return errors.New("workload: no targets")
	}
	return nil
}

// Workload is concurrent clients appending fresh signed envelopes and reading entries back, every
// operation recorded.
type Workload struct {
	cfg    WorkloadConfig
	rec    *Recorder
	signer *Signer
	http   *http.Client
	run    string // distinguishes this run's payloads from any earlier run's
	seq    atomic.Uint64
	high   atomic.Int64 // highest acknowledged index + 1
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewWorkload prepares a workload; Start runs it.
func NewWorkload(cfg WorkloadConfig, rec *Recorder) (*Workload, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := NewSigner()
	if err != nil {
		return nil, err
	}
	return &Workload{cfg: cfg, rec: rec, signer: s, http: newHTTPClient(cfg.RequestTimeout),
		run: strconv.FormatInt(time.Now().UnixNano(), 36)}, nil
}

// Start launches the clients.
func (w *Workload) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	for c := range w.cfg.Clients {
		w.wg.Add(1)
		go w.client(ctx, c)
	}
}

// Stop ends the workload and waits for every client's last operation to be recorded.
func (w *Workload) Stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

func (w *Workload) client(ctx context.Context, id int) {
	defer w.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	next := id % len(w.cfg.Targets)
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if high := w.high.Load(); high > 0 && rng.Float64() < w.cfg.ReadFraction {
			w.read(ctx, id, uint64(rng.Int64N(high)), w.cfg.Targets[rng.IntN(len(w.cfg.Targets))])
			continue
		}
		next = w.append(ctx, id, next)
	}
}

// append submits one fresh envelope, retrying the same bytes on other nodes until a node answers
// with an index or a definite refusal, or OpTimeout passes. It returns the node to start from next.
func (w *Workload) append(ctx context.Context, id, node int) int {
	subject := fmt.Sprintf("compose/%s/%d/%d", w.run, id, w.seq.Add(1))
	env, err := w.signer.Envelope(subject)
	if err != nil {
		panic(err) // marshalling fixed types cannot fail
	}
	body, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(env), "public_keys": []string{w.signer.PublicKeyPEM()}})
	op := Op{Client: id, Kind: Append, Entry: EnvelopeIdentity(env), Call: w.rec.Now(), Outcome: Unknown}
	deadline := time.Now().Add(w.cfg.OpTimeout)
	for attempt := 0; ; attempt++ {
		tg := w.cfg.Targets[node]
		res, status, retryAfter, err := w.post(ctx, tg, body)
		op.Node, op.Status = tg.Name, status
		switch {
		case err == nil && (status == http.StatusOK || status == http.StatusCreated):
			op.Outcome, op.Return, op.Index = Ok, w.rec.Now(), res.Index
			if res.Entry != op.Entry {
				op.Outcome, op.Err = Failed, fmt.Sprintf("acknowledged as %s", res.Entry)
			}
			w.raiseHigh(int64(res.Index) + 1)
			w.rec.Add(op)
			return node
		case err == nil && status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			op.Outcome, op.Return, op.Err = Failed, w.rec.Now(), res.Message
			w.rec.Add(op)
			return node
		}
		if err != nil {
			op.Err = err.Error()
		} else {
			op.Err = fmt.Sprintf("%d %s", status, res.Message)
		}
		node = (node + 1) % len(w.cfg.Targets)
		pause := min(max(retryAfter, 50*time.Millisecond), 500*time.Millisecond)
		if ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			w.rec.Add(op) // Outcome stays Unknown: returns at infinity
			return node
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (w *Workload) raiseHigh(v int64) {
	for {
		cur := w.high.Load()
		if v <= cur || w.high.CompareAndSwap(cur, v) {
			return
		}
	}
}

type submitResult struct {
	Index   uint64 `json:"index"`
	Entry   string `json:"entry"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

func (w *Workload) post(ctx context.Context, tg Target, body []byte) (submitResult, int, time.Duration, error) {
	var res submitResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tg.URL+"/v1/entries", bytes.NewReader(body))
	if err != nil {
		return res, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return res, 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return res, resp.StatusCode, 0, err
	}
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err := json.Unmarshal(b, &res); err != nil && resp.StatusCode < 300 {
		return res, resp.StatusCode, 0, fmt.Errorf("answer %q: %w", b, err)
	}
	if res.Message == "" && resp.StatusCode >= 300 {
		res.Message = string(bytes.TrimSpace(b))
	}
	return res, resp.StatusCode, time.Duration(ra) * time.Second, nil
}

// read asks one node for the entry at index.
func (w *Workload) read(ctx context.Context, id int, index uint64, tg Target) {
	op := Op{Client: id, Kind: Read, Index: index, Node: tg.Name, Call: w.rec.Now(), Outcome: Unknown}
	api := API{Name: tg.Name, URL: tg.URL, HTTP: w.http}
	leaf, status, err := api.EntryLeaf(ctx, index)
	op.Status = status
	switch {
	case err != nil:
		op.Err = err.Error()
	case status == http.StatusOK:
		op.Entry, err = Identity(leaf)
		if err != nil {
			op.Err = err.Error()
			break
		}
		op.Outcome, op.Found, op.Return = Ok, true, w.rec.Now()
	case status == http.StatusNotFound:
		op.Outcome, op.Return = Ok, w.rec.Now()
	default:
		op.Err = fmt.Sprintf("status %d", status)
	}
	w.rec.Add(op)
}
