// Command bench measures witnessnet on this machine and prints a table: append throughput and
// commit latency for 1-, 3- and 5-node loopback networks, submit-to-checkpoint time, inclusion
// proofs served, one ledger's memory and disk per million entries, the memory and disk of witness
// processes (each its own process, started as operators start them) holding a million entries
// and one of them catching the million up after losing its data, catch-up of a node that lost
// its data in a network of 100,000, and the cost of replication against a single
// unreplicated Trillian log.
//
//	go run ./test/bench            full run (several minutes)
//	go run ./test/bench -quick     smaller counts, same rows
//	go run ./test/bench -rows append -cpuprofile /tmp/prof
//	                               CPU profiles of the measured append runs alone
//	go run ./test/bench -rows nodes -node-memory-limit 300
//	                               witness processes each in a 300 MiB memory cgroup (root)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/witnessnet/witnessnet/internal/procs"
	"golang.org/x/term"
)

type options struct {
	quick        bool
	entries      int
	clients      int
	batch        int
	batchClients int
	batchEntries int
	batchRuns    int
	ledgerN      int
	nodesN       int
	nodeMemLimit int64
	nodeProfiles string
	catchupN     int
	profileDir   string
	rows         map[string]bool
}

func main() {
	var o options
	var rows string
	flag.BoolVar(&o.quick, "quick", false, "smaller counts (for a quick look; the table says which counts ran)")
	flag.IntVar(&o.entries, "entries", 20000, "entries per append run")
	flag.IntVar(&o.clients, "clients", 256, "concurrent submitters in the closed-loop run")
	flag.IntVar(&o.batch, "batch", 200, "entries per request in the batched append run (1: no batched run)")
	flag.IntVar(&o.batchClients, "batch-clients", 12, "concurrent submitters in the batched run")
	flag.IntVar(&o.batchEntries, "batch-entries", 20000, "entries in each measured batched run")
	flag.IntVar(&o.batchRuns, "batch-runs", 3, "measured batched runs per network, one after another (the row gives the median run and the range)")
	flag.IntVar(&o.ledgerN, "ledger-entries", 1000000, "entries for the memory and disk row")
	flag.IntVar(&o.nodesN, "nodes-entries", 1000000, "entries in the network of witness processes whose memory and disk the nodes row measures")
	flag.Int64Var(&o.nodeMemLimit, "node-memory-limit", 0, "run each witness process of the nodes row in a memory cgroup of this many MiB, page cache counted (needs root; 0: no limit)")
	flag.StringVar(&o.nodeProfiles, "node-profiles", "", "with the nodes row: write each witness process's heap profile near its largest anonymous memory into this directory (<name>-heap.pprof), from a debug_addr listener")
	flag.IntVar(&o.catchupN, "catchup-entries", 100000, "entries in the network before a node catches up")
	flag.StringVar(&o.profileDir, "cpuprofile", "", "write a CPU profile of each measured append run into this directory (set-up, signing and warm-up excluded)")
	flag.StringVar(&rows, "rows", "append,checkpoint,proofs,ledger,nodes,catchup,verify", "which rows to run")
	flag.Parse()
	o.batchRuns = max(o.batchRuns, 1)
	if o.quick {
		o.entries, o.batchEntries, o.ledgerN, o.nodesN, o.catchupN = 4000, 4000, 100000, 100000, 10000
	}
	o.rows = map[string]bool{}
	for _, r := range strings.Split(rows, ",") {
		o.rows[strings.TrimSpace(r)] = true
	}
	procs.Set() // the nodes run as a witness runs them
	t := &table{}
	ctx := context.Background()
	fmt.Printf("witnessnet bench · %s · %d CPUs (GOMAXPROCS %d) · %s/%s · %s\n\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"))
	steps := []struct {
		name string
		run  func(context.Context, options, *table) error
	}{
		{"append", benchAppend},
		{"checkpoint", benchCheckpoint},
		{"proofs", benchProofs},
		{"ledger", benchLedger},
		{"nodes", benchNodes},
		{"catchup", benchCatchup},
		{"verify", benchVerify},
	}
	for _, s := range steps {
		if !o.rows[s.name] {
			continue
		}
		if err := s.run(ctx, o, t); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", s.name, err)
			t.add(s.name, "failed", err.Error(), "")
		}
	}
	t.print(os.Stdout)
}

// table collects rows: what was measured, the figure, and how.
type table struct{ rows [][4]string }

func (t *table) add(what, figure, detail, baseline string) {
	t.rows = append(t.rows, [4]string{what, figure, detail, baseline})
	fmt.Fprintf(os.Stderr, "  %s: %s (%s)\n", what, figure, detail)
}

func (t *table) print(w *os.File) {
	fmt.Fprintln(w, "| measurement | result | conditions | baseline |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r[0], r[1], r[2], r[3])
	}
}

// progress draws a bar on a terminal and stays silent otherwise.
func progress(label string, total int) func(int) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		fmt.Fprintf(os.Stderr, "%s: %d\n", label, total)
		return func(int) {}
	}
	last := time.Time{}
	return func(done int) {
		if done < total && time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		const width = 30
		filled := width * done / max(total, 1)
		fmt.Fprintf(os.Stderr, "\r%-28s [%s%s] %d/%d", label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total)
		if done >= total {
			fmt.Fprintln(os.Stderr)
		}
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
