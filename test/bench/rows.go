package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/node"
)

func startNet(ctx context.Context, n int, tune func(*node.Config)) (*localnet.Network, func(), error) {
	dir, err := os.MkdirTemp("", "witnessnet-bench-")
	if err != nil {
		return nil, nil, err
	}
	nw, err := localnet.Start(ctx, localnet.Config{Nodes: n, Dir: dir, Tune: tune})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := nw.Leader(lctx); err != nil {
		nw.Close()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return nw, func() { nw.Close(); os.RemoveAll(dir) }, nil
}

// fellBehind says so when an open-loop run's answers came slower than its load was offered: the
// rate is half of one measured just before, and when the machine slows by half in between, the
// latencies are those of a queue, not of a commit.
func fellBehind(offered int, r *loadResult) string {
	if r.entries == 0 || r.rate() >= 0.9*float64(offered) {
		return ""
	}
	return fmt.Sprintf("; answered at only %.0f entries/s: the network fell behind the offered load, so these are queueing times", r.rate())
}

// leaderName is the name of the member that leads nw now ("" if none does within a few seconds).
func leaderName(ctx context.Context, nw *localnet.Network) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	i, err := nw.Leader(ctx)
	if err != nil {
		return ""
	}
	return nw.Members[i].Name
}

func benchAppend(ctx context.Context, o options, t *table) error {
	s := newEntrySigner()
	for _, n := range []int{1, 3, 5} {
		nw, stop, err := startNet(ctx, n, nil)
		if err != nil {
			return err
		}
		bodies := s.bodies(o.entries, fmt.Sprintf("append-%d", n))
		r := profiled(o, fmt.Sprintf("append-%d", n), func() *loadResult {
			return closedLoop(nw.URLs(), bodies, o.clients, progress(fmt.Sprintf("append, %d node(s)", n), len(bodies)))
		})
		if r.failed > 0 {
			stop()
			return fmt.Errorf("%d of %d submissions failed", r.failed, len(bodies))
		}
		t.add(fmt.Sprintf("append throughput, %d node(s)", n), fmt.Sprintf("%.0f entries/s", r.rate()),
			fmt.Sprintf("%d × 1 KiB DSSE entries, %d closed-loop clients over all nodes; p50 %s, p99 %s; %s", r.entries, o.clients, ms(r.quantile(0.5)), ms(r.quantile(0.99)), r.cpuShare()+r.memberShare(leaderName(ctx, nw))), "")
		if o.batch > 1 {
			// The same load first, unmeasured: a network that takes batches in its stride has
			// grown its heap for them, and the unbatched row above leaves a smaller one. Growing
			// it inside the measurement made the row pay for twice the page faults (BENCHMARKS.md).
			warm := closedLoopBatched(nw.URLs(), s.bodies(o.entries, fmt.Sprintf("warm-%d", n)), o.batchClients, o.batch,
				progress(fmt.Sprintf("batched warm-up, %d node(s)", n), o.entries))
			if warm.failed > 0 {
				stop()
				return fmt.Errorf("%d of %d batched submissions failed while warming up: %v", warm.failed, o.entries, warm.err)
			}
			// Several runs, one after another: a run of 20,000 entries lasts about a second on
			// three nodes, and this machine's speed drifts by a fifth from one second to the next.
			var runs []*loadResult
			for k := range o.batchRuns {
				name := fmt.Sprintf("append-%d-batched", n)
				if k > 0 {
					name += fmt.Sprintf("-%d", k+1)
				}
				batch := s.bodies(o.batchEntries, fmt.Sprintf("batch-%d-%d", n, k))
				rb := profiled(o, name, func() *loadResult {
					return closedLoopBatched(nw.URLs(), batch, o.batchClients, o.batch, progress(fmt.Sprintf("batched, %d node(s), run %d of %d", n, k+1, o.batchRuns), o.batchEntries))
				})
				if rb.failed > 0 {
					stop()
					return fmt.Errorf("%d of %d batched submissions failed: %v", rb.failed, o.batchEntries, rb.err)
				}
				runs = append(runs, rb)
			}
			slices.SortFunc(runs, func(a, b *loadResult) int { return cmp.Compare(a.rate(), b.rate()) })
			rb := runs[len(runs)/2]
			spread := ""
			if len(runs) > 1 {
				spread = fmt.Sprintf(", median of %d runs (%.0f–%.0f entries/s)", len(runs), runs[0].rate(), runs[len(runs)-1].rate())
			}
			t.add(fmt.Sprintf("append throughput, %d node(s), batched submission", n), fmt.Sprintf("%.0f entries/s", rb.rate()),
				fmt.Sprintf("%d × 1 KiB DSSE entries%s, POST /v1/entries/batch of %d, %d closed-loop clients over all nodes, after %d the same way; per request p50 %s, p99 %s; %s",
					rb.entries, spread, o.batch, o.batchClients, warm.entries, ms(rb.quantile(0.5)), ms(rb.quantile(0.99)), rb.cpuShare()+rb.memberShare(leaderName(ctx, nw))), "")
		}
		half := max(int(r.rate()/2), 100)
		bodies = s.bodies(o.entries/2, fmt.Sprintf("half-%d", n))
		r = profiled(o, fmt.Sprintf("append-%d-half", n), func() *loadResult {
			return openLoop(nw.URLs(), bodies, half, progress(fmt.Sprintf("half load, %d node(s)", n), len(bodies)))
		})
		stop()
		if r.failed > 0 {
			return fmt.Errorf("%d of %d submissions failed at half load", r.failed, len(bodies))
		}
		t.add(fmt.Sprintf("commit latency at half load, %d node(s)", n), fmt.Sprintf("p50 %s, p99 %s", ms(r.quantile(0.5)), ms(r.quantile(0.99))),
			fmt.Sprintf("open loop at %d entries/s, %d entries; submit until 201%s", half, r.entries, fellBehind(half, r)), "")
	}
	return nil
}

// benchCheckpoint measures submit until the entry is in a checkpoint with a quorum.
func benchCheckpoint(ctx context.Context, o options, t *table) error {
	nw, stop, err := startNet(ctx, 3, nil)
	if err != nil {
		return err
	}
	defer stop()
	var mu sync.Mutex
	seen := map[uint64]time.Time{} // checkpoint size -> first seen
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if size, err := checkpointSize(nw.URLs()[0]); err == nil {
				mu.Lock()
				if _, ok := seen[size]; !ok {
					seen[size] = time.Now()
				}
				mu.Unlock()
			}
		}
	}()
	const rate = 1000
	n := max(o.entries/4, 1000)
	r := openLoop(nw.URLs(), newEntrySigner().bodies(n, "checkpoint"), rate, progress("submit to checkpoint", n))
	// Wait for the last entries to be checkpointed.
	maxIdx := slices.Max(r.indexes)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		ok := false
		for size := range seen {
			ok = ok || size > maxIdx
		}
		mu.Unlock()
		if ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(done)
	mu.Lock()
	defer mu.Unlock()
	sizes := make([]uint64, 0, len(seen))
	for s := range seen {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	var lat []time.Duration
	for i, idx := range r.indexes {
		j, _ := slices.BinarySearch(sizes, idx+1)
		if j == len(sizes) {
			continue
		}
		// The first checkpoint covering idx may be any size >= idx+1: take the earliest seen.
		first := seen[sizes[j]]
		for _, s := range sizes[j:] {
			if seen[s].Before(first) {
				first = seen[s]
			}
		}
		lat = append(lat, first.Sub(r.started[i]))
	}
	if len(lat) == 0 {
		return fmt.Errorf("no entry reached a checkpoint")
	}
	slices.Sort(lat)
	t.add("submit until in a quorum-cosigned checkpoint, 3 nodes", fmt.Sprintf("p50 %s, p99 %s", ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])),
		fmt.Sprintf("%d entries at %d/s; checkpoint boundary every 200 ms; /checkpoint polled every 5 ms", len(lat), rate), "")
	return nil
}

func checkpointSize(url string) (uint64, error) {
	resp, err := http.Get(url + "/checkpoint")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s", resp.Status)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 3 {
		return 0, fmt.Errorf("short checkpoint")
	}
	return strconv.ParseUint(lines[1], 10, 64)
}

// benchProofs measures inclusion proofs served per second by one node.
func benchProofs(ctx context.Context, o options, t *table) error {
	nw, stop, err := startNet(ctx, 3, nil)
	if err != nil {
		return err
	}
	defer stop()
	n := max(o.entries/2, 2000)
	if r := closedLoop(nw.URLs(), newEntrySigner().bodies(n, "proofs"), 128, progress("fill for proofs", n)); r.failed > 0 {
		return fmt.Errorf("%d submissions failed", r.failed)
	}
	var size uint64
	for deadline := time.Now().Add(30 * time.Second); size < uint64(n) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		size, _ = checkpointSize(nw.URLs()[0])
	}
	c := newClient(64)
	var count atomic.Int64
	end := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				resp, err := c.Get(fmt.Sprintf("%s/v1/proof/inclusion?index=%d&size=%d", nw.URLs()[0], rand.Uint64N(size), size))
				if err != nil {
					continue
				}
				var p struct{ Hashes [][]byte }
				if json.NewDecoder(resp.Body).Decode(&p) == nil && resp.StatusCode == http.StatusOK {
					count.Add(1)
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	t.add("inclusion proofs served, one node", fmt.Sprintf("%.0f proofs/s", float64(count.Load())/5),
		fmt.Sprintf("tree of %d, 64 concurrent clients, 5 s, JSON over HTTP", size), "")
	return nil
}

// benchLedger appends straight to one node's ledger (no raft, no HTTP): the unreplicated
// Trillian-log baseline, and the memory and disk one node needs per million entries.
func benchLedger(ctx context.Context, o options, t *table) error {
	dir, err := os.MkdirTemp("", "witnessnet-bench-ledger-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The rows before this one leave heap the runtime has freed and not yet returned, and a
	// peak RSS of their own: neither is this node's. Return the one, reset the other (Linux:
	// writing 5 to clear_refs resets VmHWM).
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	l, err := ledger.Open(ctx, ledger.Config{Path: filepath.Join(dir, "state.db")})
	if err != nil {
		return err
	}
	defer l.Close()
	l.Start()
	s := newEntrySigner()
	const batch = 1000
	bar := progress("ledger fill", o.ledgerN)
	// RSS counts the pages of state.db that bbolt's map has touched since it last remapped the
	// file: file-backed, the page cache's to reclaim. The process's own memory is RssAnon,
	// sampled here for its peak.
	var peakAnon atomic.Int64
	stopSampling := make(chan struct{})
	defer close(stopSampling)
	go func() {
		for {
			if a := procStatus("RssAnon"); a > peakAnon.Load() {
				peakAnon.Store(a)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	for i := 0; i < o.ledgerN; i += batch {
		bodies := s.bodies(min(batch, o.ledgerN-i), fmt.Sprintf("ledger-%d", i))
		cmd := ledger.Command{Index: uint64(i/batch + 1), Kind: ledger.KindEntries, Stamp: time.Now()}
		for _, b := range bodies {
			var req struct {
				Envelope   json.RawMessage `json:"envelope"`
				PublicKeys []string        `json:"public_keys"`
			}
			_ = json.Unmarshal(b, &req)
			leaf, blob, err := ledger.NewLeaf(req.Envelope, "", req.PublicKeys)
			if err != nil {
				return err
			}
			rec, _ := (&ledger.Record{Identity: ledger.IdentityOf(req.Envelope), Leaf: leaf, Blob: blob}).MarshalBinary()
			cmd.Records = append(cmd.Records, rec)
		}
		l.Apply([]ledger.Command{cmd})
		bar(i + len(bodies))
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := l.WaitTreeSize(wctx, uint64(o.ledgerN)); err != nil {
		return err
	}
	elapsed := time.Since(start)
	// Disk and memory are measured once the indexes hold every entry too: an index merge in
	// progress holds its runs in memory and, until it commits, pages of both versions on disk.
	for l.Unindexed() > 0 {
		select {
		case <-wctx.Done():
			return fmt.Errorf("%d entries still unindexed: %w", l.Unindexed(), wctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	disk := dirSize(dir)
	scale := 1e6 / float64(o.ledgerN)
	t.add("single Trillian log, no replication (apply + integrate)", fmt.Sprintf("%.0f entries/s", float64(o.ledgerN)/elapsed.Seconds()),
		fmt.Sprintf("%d entries, batches of %d, one bbolt file, signing of the bench entries included", o.ledgerN, batch), "baseline for the append rows")
	t.add("one node's disk per million entries", fmt.Sprintf("%.0f MiB", float64(disk)*scale/(1<<20)),
		fmt.Sprintf("state.db after %d × 1 KiB entries (×%.0f)", o.ledgerN, scale), "")
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	t.add("one node's memory at that size", fmt.Sprintf("%.0f MiB anonymous at most, %.0f MiB Go heap at the end", mib(peakAnon.Load()), float64(ms.HeapInuse)/(1<<20)),
		fmt.Sprintf("whole bench process over %d entries (sampled every 20 ms, from the row's start); at the end RSS %.0f MiB (%.0f anonymous, %.0f of state.db's map); peak RSS %.0f MiB",
			o.ledgerN, mib(procStatus("VmRSS")), mib(procStatus("RssAnon")), mib(procStatus("RssFile")), mib(procStatus("VmHWM"))), "")
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// procStatus is a size in bytes from /proc/self/status: VmRSS the resident set, RssAnon and
// RssFile its private and file-backed parts, VmHWM its peak.
func procStatus(field string) int64 { return procValues("/proc/self/status")[field] }

// benchCatchup wipes one member's data and measures how long it takes to hold the network's
// tree again (raft snapshot install, then the log's tail, then integration).
func benchCatchup(ctx context.Context, o options, t *table) error {
	nw, stop, err := startNet(ctx, 3, func(c *node.Config) {
		c.Consensus.TrailingLogs = 1024
		c.Consensus.SnapshotThreshold = 4096
		c.Consensus.SnapshotInterval = time.Second
	})
	if err != nil {
		return err
	}
	defer stop()
	if r := closedLoop(nw.URLs(), newEntrySigner().bodies(o.catchupN, "catchup"), o.clients, progress("fill for catch-up", o.catchupN)); r.failed > 0 {
		return fmt.Errorf("%d submissions failed", r.failed)
	}
	lead, err := nw.Leader(ctx)
	if err != nil {
		return err
	}
	victim := (lead + 1) % 3
	if err := nw.Stop(ctx, victim); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(nw.DataDir(victim))); err != nil {
		return err
	}
	want := nw.Node(lead).Status().LogSize
	start := time.Now()
	if err := nw.Start(ctx, victim); err != nil {
		return err
	}
	bar := progress("catch-up", int(want))
	for {
		st := nw.Node(victim).Status()
		bar(int(st.TreeSize))
		if st.TreeSize >= want {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("no catch-up after 10 minutes (tree %d of %d)", st.TreeSize, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.add("catch-up of a member that lost its data, 3 nodes", ms(time.Since(start)),
		fmt.Sprintf("%d entries (snapshot install + log tail + integration)", want), "")
	return nil
}
