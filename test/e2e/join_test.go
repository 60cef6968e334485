//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// witness runs the witness binary and returns its standard output.
func witness(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "witness"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("witness %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// An organization joins a running libp2p network the way an operator does it: witness keygen,
// a configuration in join mode, the next membership version signed by the current members with
// witness membership sign, merged and submitted. The leader makes the new node a raft voter, it
// catches up, takes submissions, and its cosignatures appear on published checkpoints.
func TestMemberJoinsOverLibp2p(t *testing.T) {
	const base = 18100
	nw := startNetwork(t, 3, base, "--transport", "libp2p")
	s := newSubmitter()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw.leader()
	acked := make([]uint64, 50)
	nw.load(t, s, acked, 0, 50, nil)

	dir := nw.dir
	n4 := filepath.Join(dir, "node4")
	url4 := fmt.Sprintf("http://127.0.0.1:%d", base+3)
	lines := strings.Split(strings.TrimSpace(witness(t, "keygen", "--name", "node4", "--origin", "witnessnet.local/log", "--url", url4, "--dir", n4)), "\n")
	if len(lines) != 3 {
		t.Fatalf("keygen printed %q", lines)
	}
	logLine, witLine, peerLine := lines[0], lines[1], lines[2]
	peerID := strings.Fields(peerLine)[2]

	// The next version: node4's keys and peer ID, and a quorum of 3 of 4 (more than 2n/3).
	genesis, err := os.ReadFile(filepath.Join(dir, "membership.txt"))
	if err != nil {
		t.Fatal(err)
	}
	grow := func(text string) string {
		text = strings.Replace(text, "\nwitness node1 ", "\n"+logLine+"\nwitness node1 ", 1)
		text = strings.Replace(text, "\ngroup members 3 node1 node2 node3\n", "\n"+witLine+"\ngroup members 3 node1 node2 node3 node4\n", 1)
		return text
	}
	next := grow(strings.Replace(string(genesis), "version 1\n", "version 2\n", 1)) + peerLine + "\n"
	if !strings.Contains(next, "node4 node4") && !strings.Contains(next, "group members 3 node1 node2 node3 node4") {
		t.Fatalf("could not extend the membership:\n%s", next)
	}
	os.WriteFile(filepath.Join(dir, "next.txt"), []byte(next), 0o644)
	policy, _ := os.ReadFile(filepath.Join(dir, "policy.txt"))
	os.WriteFile(filepath.Join(n4, "policy.txt"), []byte(grow(string(policy))), 0o644)
	var signed []string
	for i := 1; i <= 3; i++ {
		out := filepath.Join(dir, fmt.Sprintf("next.node%d", i))
		witness(t, "membership", "sign", "--key", filepath.Join(dir, fmt.Sprintf("node%d", i), "witness.key"), "--name", fmt.Sprintf("node%d", i), "--out", out, filepath.Join(dir, "next.txt"))
		signed = append(signed, out)
	}
	witness(t, append([]string{"membership", "merge", "--out", filepath.Join(dir, "next.signed")}, signed...)...)
	witness(t, "membership", "submit", "--server", nw.urls[0], filepath.Join(dir, "next.signed"))

	// node4's configuration: node1's peers and itself, join mode.
	y1, err := os.ReadFile(filepath.Join(dir, "node1", "witness.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	peers := string(y1)[strings.Index(string(y1), "peers:\n"):strings.Index(string(y1), "p2p:\n")]
	cfg := fmt.Sprintf(`name: node4
origin: witnessnet.local/log
data_dir: %[1]s/data
http_addr: 127.0.0.1:%[2]d
log_key: %[1]s/log.key
witness_key: %[1]s/witness.key
policy: %[1]s/policy.txt
membership: %[3]s
join: true
%[4]s    - name: node4
      url: %[5]s
      peer_id: %[6]s
      p2p_addrs:
        - /ip4/127.0.0.1/tcp/%[7]d
p2p:
    listen: /ip4/127.0.0.1/tcp/%[7]d
    key: %[1]s/p2p.key
`, n4, base+3, filepath.Join(dir, "membership.txt"), peers, url4, peerID, base+203)
	os.WriteFile(filepath.Join(n4, "witness.yaml"), []byte(cfg), 0o644)
	nw.urls = append(nw.urls, url4)
	nw.procs = append(nw.procs, nil)
	nw.start(3)
	nw.waitHealthy(3)

	deadline := time.Now().Add(60 * time.Second)
	for {
		var st status
		if getJSON(url4+"/v1/status", &st) == nil && st.TreeSize >= 50 {
			break
		}
		if time.Now().After(deadline) {
			logb, _ := os.ReadFile(filepath.Join(dir, "node4.log"))
			t.Fatalf("node4 did not catch up; its log:\n%s", tail(logb))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var idx uint64
	for ok := false; !ok; {
		if idx, ok = s.submit(ctx, url4, s.envelope(1000)); !ok && time.Now().After(deadline) {
			t.Fatal("submit through node4")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		cp, err := getBytes(nw.urls[0] + "/checkpoint")
		if err == nil && strings.Contains(string(cp), "\u2014 node4 ") && checkpointSize(cp) > idx {
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i := 1; i <= 4; i++ {
				logb, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
				fmt.Fprintf(&b, "--- node%d:\n%s\n", i, tail(logb))
			}
			t.Fatalf("no published checkpoint past %d cosigned by node4; last: %v\n%s\n%s", idx, err, cp, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}

func checkpointSize(cp []byte) uint64 {
	var size uint64
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) > 1 {
		fmt.Sscan(lines[1], &size)
	}
	return size
}
