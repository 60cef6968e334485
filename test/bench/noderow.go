package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// benchNodes measures witness processes as operators run them: `witness testnet` writes a
// 3-member network, each member runs as `witness run --config …` with the defaults it ships
// with, and the bench process (a separate process, so its own memory is not counted) fills the
// network to o.nodesN entries with batched submissions. Each process's memory is sampled from
// /proc throughout; with -node-memory-limit each runs in a memory cgroup of that size, which
// also counts the page cache it fills, as a container limit does.
func benchNodes(ctx context.Context, o options, t *table) error {
	dir, err := os.MkdirTemp("", "witnessnet-bench-nodes-")
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	bin := filepath.Join(dir, "witness")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/witnessnet/witnessnet/cmd/witness").CombinedOutput(); err != nil {
		return fmt.Errorf("go build witness: %v\n%s", err, out)
	}
	const n = 3
	base, err := freePorts(n + 1) // the ports of a fourth member, which joins at the end, too
	if err != nil {
		return err
	}
	netDir := filepath.Join(dir, "net")
	if out, err := exec.CommandContext(ctx, bin, "testnet", "--nodes", fmt.Sprint(n), "--dir", netDir, "--base-port", fmt.Sprint(base)).CombinedOutput(); err != nil {
		return fmt.Errorf("witness testnet: %v\n%s", err, out)
	}
	if o.nodeProfiles != "" {
		if err := os.MkdirAll(o.nodeProfiles, 0o755); err != nil {
			return err
		}
	}
	var limit *memLimit
	if o.nodeMemLimit > 0 {
		if limit, err = newMemLimit(o.nodeMemLimit << 20); err != nil {
			return fmt.Errorf("-node-memory-limit: %w", err)
		}
		defer limit.remove()
	}
	procs := make([]*nodeProc, n)
	urls := make([]string, n)
	for i := range procs {
		name := fmt.Sprintf("node%d", i+1)
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d", base+i)
		debugURL := ""
		if o.nodeProfiles != "" {
			if debugURL, err = addDebugAddr(filepath.Join(netDir, name, "witness.yaml")); err != nil {
				return err
			}
		}
		p, err := startNodeProc(bin, filepath.Join(netDir, name), name, limit)
		if err != nil {
			return err
		}
		if debugURL != "" {
			p.heapAtPeak(debugURL, filepath.Join(o.nodeProfiles, name+"-heap.pprof"))
		}
		defer p.stop()
		procs[i] = p
	}
	for i, u := range urls {
		if err := waitHealthy(ctx, u, procs[i]); err != nil {
			return err
		}
	}

	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		for {
			for _, p := range procs {
				p.sample()
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	endSampling := func() {
		if stopSampling != nil {
			close(stopSampling)
			sampling.Wait()
			stopSampling = nil
		}
	}
	defer endSampling()

	start := time.Now()
	retried, err := fillBatched(urls, o.nodesN, o.batchClients, o.batch, procs, progress("fill witness processes", o.nodesN))
	if err != nil {
		keep = true
		return fmt.Errorf("%w (the network's directory, with each member's witness.log, is kept: %s)", err, dir)
	}
	filled := time.Since(start)
	// Every member holds the whole tree before anything is read at the end.
	for i, u := range urls {
		if err := waitTree(ctx, u, uint64(o.nodesN), procs[i], 5*time.Minute, nil); err != nil {
			return err
		}
	}
	// A few more seconds as a running network: snapshots and index merges the fill started
	// finish inside the sampled window.
	time.Sleep(5 * time.Second)
	for _, p := range procs {
		p.sample()
	}
	endSampling()
	leader := -1
	for i, u := range urls {
		var st struct {
			RaftState string `json:"raft_state"`
		}
		if getJSON(u+"/v1/status", &st) == nil && st.RaftState == "Leader" {
			leader = i
		}
	}
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	var worstAnon, worstRSS int64
	var each, disks []string
	for i, p := range procs {
		worstAnon, worstRSS = max(worstAnon, p.peakAnon), max(worstRSS, p.hwm)
		role := ""
		if i == leader {
			role = " (leader)"
		}
		each = append(each, fmt.Sprintf("%s%s %.0f anonymous at most, peak RSS %.0f, at the end RSS %.0f (%.0f file-backed)",
			p.name, role, mib(p.peakAnon), mib(p.hwm), mib(p.rss), mib(p.rssFile)))
		data := filepath.Join(p.dir, "data")
		per := func(path string) float64 { return float64(diskUsage(path)) / (1 << 20) }
		disks = append(disks, fmt.Sprintf("%s %.0f MiB (state.db %.0f, raft WAL %.0f, snapshots %.0f)", p.name, per(data),
			per(filepath.Join(data, "state.db")), per(filepath.Join(data, "raft", "wal")), per(filepath.Join(data, "raft", "snapshots"))))
	}
	conds := fmt.Sprintf("%d witness processes (witness testnet, witness run, shipped defaults) after %d × 1 KiB DSSE entries, filled at %.0f entries/s by batched submissions from the bench process (signing included; %d batches sent again after a 503 or 429); /proc sampled every 50 ms; MiB: %s",
		n, o.nodesN, float64(o.nodesN)/filled.Seconds(), retried, strings.Join(each, "; "))
	if limit != nil {
		usage, oom := limit.report()
		conds += fmt.Sprintf("; each in a memory cgroup of %d MiB (page cache counted), largest charge %.0f MiB, OOM kills %d", o.nodeMemLimit, mib(usage), oom)
	}
	t.add("a witness process's memory at that size", fmt.Sprintf("%.0f MiB anonymous at most, peak RSS %.0f MiB (largest of %d)", mib(worstAnon), mib(worstRSS), n), conds, "")
	t.add("a member's data directory at that size", strings.Join(disks, ", "),
		fmt.Sprintf("blocks allocated (as du counts them) under each member's data directory after %d entries; raft-wal allocates each segment file (wal_segment_bytes) whole", o.nodesN), "")

	// Catch-up: a follower loses its data directory and is started again, as a member whose
	// disk was replaced would be; it holds the network's tree again once raft has sent it what
	// it lacks (a snapshot, or the log itself while the leader still holds all of it).
	victim := (max(leader, 0) + 1) % n
	p := procs[victim]
	p.stop()
	if err := os.RemoveAll(filepath.Join(p.dir, "data")); err != nil {
		return err
	}
	begin := time.Now()
	p, err = startNodeProc(bin, p.dir, p.name, limit)
	if err != nil {
		return err
	}
	defer p.stop()
	procs[victim] = p
	if err := waitTree(ctx, urls[victim], uint64(o.nodesN), p, 10*time.Minute, p.sample); err != nil {
		return err
	}
	took := time.Since(begin)
	p.sample()
	how := catchUpHow(p, begin)
	// caughtUp says what a catching-up member used meanwhile, and in what cgroup.
	caughtUp := func(q *nodeProc) string {
		s := fmt.Sprintf("its memory meanwhile %.0f MiB anonymous at most, peak RSS %.0f MiB; it read %.0f MiB from storage",
			mib(q.peakAnon), mib(q.hwm), mib(q.readBytes))
		if limit != nil {
			_, oom := limit.report()
			s += fmt.Sprintf(", in a memory cgroup of %d MiB (OOM kills in the row %d)", o.nodeMemLimit, oom)
		}
		return s
	}
	conds = fmt.Sprintf("%s restarted with an empty data directory in a network of %d holding %d entries, until it holds the whole tree; it received %s; %s",
		p.name, n, o.nodesN, how, caughtUp(p))
	t.add("catch-up of a witness process that lost its data, at that size", ms(took), conds, "")

	// A new organization joins the network as an operator adds one (docs/operator-guide.md,
	// "Joining and leaving"): its keys, the next membership version signed by the three members,
	// merged and submitted, and a node in join mode that the leader makes a raft voter.
	url4, err := joinFourth(ctx, bin, netDir, base+n, base+100+n, urls[max(leader, 0)])
	if err != nil {
		return err
	}
	begin = time.Now()
	j, err := startNodeProc(bin, filepath.Join(netDir, "node4"), "node4", limit)
	if err != nil {
		return err
	}
	defer j.stop()
	if err := waitTree(ctx, url4, uint64(o.nodesN), j, 10*time.Minute, j.sample); err != nil {
		return err
	}
	took = time.Since(begin)
	j.sample()
	conds = fmt.Sprintf("%s, a fourth organization, joined the network of %d holding %d entries by a membership version the three signed (witness keygen, membership sign, merge and submit; join: true); from its process's start until it holds the whole tree; it received %s; %s",
		j.name, n, o.nodesN, catchUpHow(j, begin), caughtUp(j))
	t.add("catch-up of a new member joining, at that size", ms(took), conds, "")

	// A member's start after a reboot: nothing of its data directory is in the page cache.
	p = procs[victim]
	p.stop()
	dropped, err := dropFromCache(filepath.Join(p.dir, "data"))
	if err != nil {
		return err
	}
	begin = time.Now()
	if p, err = startNodeProc(bin, p.dir, p.name, limit); err != nil {
		return err
	}
	defer p.stop()
	procs[victim] = p
	if err := waitHealthy(ctx, urls[victim], p); err != nil {
		return err
	}
	took = time.Since(begin)
	p.sample()
	conds = fmt.Sprintf("%s stopped, the %.0f MiB of its data directory dropped from the page cache (synced, then posix_fadvise DONTNEED), as after a reboot, and started again, until /healthz answers; it read %.0f MiB from storage",
		p.name, mib(dropped), mib(p.readBytes))
	if limit != nil {
		conds += fmt.Sprintf(", in a memory cgroup of %d MiB", o.nodeMemLimit)
	}
	t.add("start of a member whose files are not in the page cache, at that size", ms(took), conds, "")
	return nil
}

// dropFromCache syncs every file under dir and asks the kernel to drop its pages from the page
// cache, and returns how many bytes the files hold.
func dropFromCache(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return err
		}
		if fi, err := f.Stat(); err == nil {
			total += fi.Size()
		}
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
	return total, err
}

// catchUpHow says from a member's log how it caught up since begin: raft logs that it stored the
// leader's state before the state machine restores it, so before the tree is whole ("Installed
// remote snapshot" comes only after the log is trimmed, seconds later in a small cgroup).
func catchUpHow(p *nodeProc, begin time.Time) string {
	log, err := os.ReadFile(filepath.Join(p.dir, "witness.log"))
	if err != nil || !strings.Contains(string(log), "copied to local snapshot") {
		return "the leader's log (no snapshot)"
	}
	how := "the leader's state (a raft snapshot), then the log after it"
	received, okR := logTime(log, "copied to local snapshot")
	restored, okH := logTime(log, "raft snapshot now held by the state")
	if okR && okH {
		how += fmt.Sprintf(" (state received %.1f s after the start, restored %.1f s later)", received.Sub(begin).Seconds(), restored.Sub(received).Seconds())
	}
	return how
}

// joinFourth prepares node4 of a testnet in netDir to join it, as docs/operator-guide.md says an
// organization joins: `witness keygen`, the next membership version with its log and witness
// keys, its raft address and the group grown to four (three of them a quorum, more than two
// thirds), signed by each current member with `witness membership sign`, merged and submitted
// to server; then node4's configuration in join mode (netDir/node4/witness.yaml). It returns
// node4's URL; node4 is not started.
func joinFourth(ctx context.Context, bin, netDir string, httpPort, raftPort int, server string) (url string, err error) {
	const name = "node4"
	dir := filepath.Join(netDir, name)
	url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	run := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("witness %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	y1, err := os.ReadFile(filepath.Join(netDir, "node1", "witness.yaml"))
	if err != nil {
		return "", err
	}
	origin, peers := "", ""
	lines := strings.Split(string(y1), "\n")
	for i, line := range lines {
		if v, ok := strings.CutPrefix(line, "origin: "); ok {
			origin = v
		}
		if line == "peers:" {
			for _, l := range lines[i+1:] {
				if !strings.HasPrefix(l, " ") {
					break
				}
				peers += l + "\n"
			}
		}
	}
	if origin == "" || peers == "" {
		return "", fmt.Errorf("node1's configuration has no origin or peers:\n%s", y1)
	}
	out, err := run("keygen", "--name", name, "--origin", origin, "--url", url, "--dir", dir)
	if err != nil {
		return "", err
	}
	var logLine, witnessLine string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "log "):
			logLine = l
		case strings.HasPrefix(l, "witness "):
			witnessLine = l
		}
	}
	if logLine == "" || witnessLine == "" {
		return "", fmt.Errorf("witness keygen printed no log or witness line:\n%s", out)
	}
	// grow adds node4's keys to a membership or policy text, each after the others of its kind,
	// and node4 to the group of members, with a quorum of more than two thirds of them.
	grow := func(text string) (string, error) {
		var b strings.Builder
		logs, grown := false, false
		for _, l := range strings.SplitAfter(text, "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) > 0 && f[0] == "witness" && !logs:
				b.WriteString(logLine + "\n")
				logs = true
			case len(f) > 2 && f[0] == "group" && f[1] == "members":
				members := append(f[3:], name)
				fmt.Fprintf(&b, "%s\ngroup members %d %s\n", witnessLine, 2*len(members)/3+1, strings.Join(members, " "))
				grown = true
				continue
			}
			b.WriteString(l)
		}
		if !logs || !grown {
			return "", fmt.Errorf("no witness lines or no group of members in:\n%s", text)
		}
		return b.String(), nil
	}
	genesis, err := os.ReadFile(filepath.Join(netDir, "membership.txt"))
	if err != nil {
		return "", err
	}
	next, err := grow(strings.Replace(string(genesis), "\nversion 1\n", "\nversion 2\n", 1))
	if err != nil {
		return "", err
	}
	next += fmt.Sprintf("raft %s 127.0.0.1:%d\n", name, raftPort)
	policy, err := os.ReadFile(filepath.Join(netDir, "policy.txt"))
	if err != nil {
		return "", err
	}
	grownPolicy, err := grow(string(policy))
	if err != nil {
		return "", err
	}
	files := map[string]string{
		filepath.Join(netDir, "next.txt"): next,
		filepath.Join(dir, "policy.txt"):  grownPolicy,
		filepath.Join(dir, "witness.yaml"): fmt.Sprintf("name: %[1]s\norigin: %[2]s\ndata_dir: %[3]s/data\nhttp_addr: 127.0.0.1:%[4]d\nraft_addr: 127.0.0.1:%[5]d\n"+
			"log_key: %[3]s/log.key\nwitness_key: %[3]s/witness.key\npolicy: %[3]s/policy.txt\nmembership: %[6]s\njoin: true\n"+
			"peers:\n%[7]s    - name: %[1]s\n      raft_addr: 127.0.0.1:%[5]d\n      url: %[8]s\n",
			name, origin, dir, httpPort, raftPort, filepath.Join(netDir, "membership.txt"), peers, url),
	}
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return "", err
		}
	}
	merge := []string{"membership", "merge", "--out", filepath.Join(netDir, "next.signed")}
	for i := 1; i <= 3; i++ {
		member := fmt.Sprintf("node%d", i)
		signed := filepath.Join(netDir, "next."+member)
		if _, err := run("membership", "sign", "--key", filepath.Join(netDir, member, "witness.key"), "--name", member, "--out", signed, filepath.Join(netDir, "next.txt")); err != nil {
			return "", err
		}
		merge = append(merge, signed)
	}
	if _, err := run(merge...); err != nil {
		return "", err
	}
	if _, err := run("membership", "submit", "--server", server, filepath.Join(netDir, "next.signed")); err != nil {
		return "", err
	}
	return url, nil
}

// fillBatched submits n fresh entries over urls, per to a POST /v1/entries/batch, from clients
// submitters that each sign what they send, and returns how many batches were sent again after
// a refusal to retry (503, 429). It fails on the first entry not appended otherwise, or when a
// node process has exited.
func fillBatched(urls []string, n, clients, per int, procs []*nodeProc, progress func(int)) (retried int64, err error) {
	c := newClient(clients)
	var retries atomic.Int64
	var next, done atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			s := newEntrySigner()
			for first.Load() == nil {
				lo := int(next.Add(int64(per)) - int64(per))
				if lo >= n {
					return
				}
				k := min(per, n-lo)
				bodies := s.bodies(k, fmt.Sprintf("nodes-%d", lo))
				err := submitBatch(c, urls[w%len(urls)], bodies)
				// What a client does: a batch the API refuses for now is sent again, whole
				// (an entry already appended is answered with its index, not appended twice).
				for try := 0; try < 100 && errors.As(err, new(retryable)); try++ {
					retries.Add(1)
					time.Sleep(100 * time.Millisecond)
					err = submitBatch(c, urls[(w+try+1)%len(urls)], bodies)
				}
				if err == nil {
					progress(int(done.Add(int64(k))))
					continue
				}
				for _, p := range procs {
					if e := p.exited(); e != nil {
						err = e
					}
				}
				first.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return retries.Load(), *e
	}
	return retries.Load(), nil
}

// nodeProc is one witness process and what was sampled of its memory.
type nodeProc struct {
	name, dir string
	cmd       *exec.Cmd
	waited    chan struct{}
	waitErr   error

	mu                          sync.Mutex
	peakAnon, hwm, rss, rssFile int64
	readBytes                   int64         // read from storage, as last sampled (read_bytes, procValues)
	profiledAt                  int64         // the anonymous memory at the last heap profile
	profile                     chan struct{} // asks for a heap profile, with -node-profiles
}

// heapAtPeak makes the process's heap profile be fetched from its debug listener into path
// each time its anonymous memory passes the last profiled peak by 4 MiB: at the end, path holds
// the heap as it was near the process's largest anonymous memory.
func (p *nodeProc) heapAtPeak(debugURL, path string) {
	p.profile = make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-p.waited:
				return
			case <-p.profile:
			}
			resp, err := http.Get(debugURL + "/debug/pprof/heap")
			if err != nil {
				continue
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				_ = os.WriteFile(path, b, 0o644)
			}
		}
	}()
}

// addDebugAddr gives the member a debug listener on a free loopback port and returns its URL.
func addDebugAddr(config string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	f, err := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	_, err = fmt.Fprintf(f, "debug_addr: %s\n", addr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return "http://" + addr, err
}

func startNodeProc(bin, dir, name string, limit *memLimit) (*nodeProc, error) {
	logf, err := os.Create(filepath.Join(dir, "witness.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "witness.yaml"))
	if limit != nil {
		// The process is in its cgroup from its first instruction, so that the limit it reads
		// at start (procs.SetMemoryLimit) is this one: a shell joins the cgroup, then becomes
		// the witness.
		procsFile, err := limit.add(name)
		if err != nil {
			logf.Close()
			return nil, err
		}
		cmd = exec.Command("/bin/sh", "-c", `echo $$ > "$0" && exec "$@"`, procsFile, bin, "run", "--config", filepath.Join(dir, "witness.yaml"))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &nodeProc{name: name, dir: dir, cmd: cmd, waited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.waited)
	}()
	return p, nil
}

// exited reports, once the process has exited, how, with the end of its log.
func (p *nodeProc) exited() error {
	select {
	case <-p.waited:
	default:
		return nil
	}
	log, _ := os.ReadFile(filepath.Join(p.dir, "witness.log"))
	if len(log) > 2000 {
		log = log[len(log)-2000:]
	}
	return fmt.Errorf("%s exited (%v); its log ends:\n%s", p.name, p.waitErr, log)
}

func (p *nodeProc) stop() {
	select {
	case <-p.waited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.waited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.waited
	}
}

func (p *nodeProc) sample() {
	st := procValues(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if st == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peakAnon = max(p.peakAnon, st["RssAnon"])
	if p.profile != nil && p.peakAnon >= p.profiledAt+4<<20 {
		p.profiledAt = p.peakAnon
		select {
		case p.profile <- struct{}{}:
		default:
		}
	}
	p.hwm = max(p.hwm, st["VmHWM"])
	p.rss, p.rssFile = st["VmRSS"], st["RssFile"]
	if counters := procValues(fmt.Sprintf("/proc/%d/io", p.cmd.Process.Pid)); counters != nil {
		p.readBytes = max(p.readBytes, counters["read_bytes"])
	}
}

// procValues reads a /proc file of "key: number" lines (status, io), a number followed by "kB"
// in bytes; nil when it cannot be read. In /proc/<pid>/io, read_bytes is what the process has
// caused to be read from storage so far: page-cache misses, its own reads and its mapped
// files' faults alike.
func procValues(path string) map[string]int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v, kb := strings.CutSuffix(strings.TrimSpace(v), " kB")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		if kb {
			n <<= 10
		}
		out[k] = n
	}
	return out
}

func waitHealthy(ctx context.Context, url string, p *nodeProc) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not healthy after a minute", p.name)
}

// waitTree polls url's status until it holds size entries, calling tick (if any) at each poll,
// and fails if p exits or patience runs out.
func waitTree(ctx context.Context, url string, size uint64, p *nodeProc, patience time.Duration, tick func()) error {
	deadline := time.Now().Add(patience)
	var st struct {
		TreeSize uint64 `json:"tree_size"`
	}
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		if tick != nil {
			tick()
		}
		if getJSON(url+"/v1/status", &st) == nil && st.TreeSize >= size {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s does not hold %d entries after %v (tree %d)", p.name, size, patience, st.TreeSize)
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// freePorts finds a base port p such that p..p+n-1 (HTTP) and p+100..p+100+n-1 (raft) can be
// listened on now, as `witness testnet --base-port` lays them out.
func freePorts(n int) (int, error) {
	for try := 0; try < 50; try++ {
		base := 20000 + (int(time.Now().UnixNano()/1000)+try*397)%20000
		var ls []net.Listener
		ok := true
		for i := range n {
			for _, port := range []int{base + i, base + 100 + i} {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					ok = false
					break
				}
				ls = append(ls, l)
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("no free ports for a testnet")
}

// diskUsage is what `du` reports for path: the blocks allocated to the files under it, not their
// lengths (a raft-wal segment is created at its full size and filled as the log grows).
func diskUsage(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// logTime is the time of the first line of a witness's log that holds msg.
func logTime(log []byte, msg string) (time.Time, bool) {
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		v, ok := strings.CutPrefix(line, "time=")
		if !ok {
			return time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, strings.Fields(v)[0])
		return t, err == nil
	}
	return time.Time{}, false
}
