//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/witnessnet/witnessnet/internal/ledger"
	"golang.org/x/mod/sumdb/note"
)

// load submits envelopes [from, to) concurrently across the live nodes, retrying each envelope
// (the same bytes) on another node until one acknowledges it. onAck runs after each ack.
func (nw *network) load(t *testing.T, s *submitter, acked []uint64, from, to int, onAck func(done int64)) {
	var next atomic.Int64
	next.Store(int64(from))
	var done atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1) - 1)
				if n >= to {
					return
				}
				env := s.envelope(n)
				for attempt := 0; ; attempt++ {
					if ctx.Err() != nil {
						t.Errorf("entry %d never acknowledged", n)
						return
					}
					i := (n + attempt) % len(nw.urls)
					idx, ok := s.submit(ctx, nw.urls[i], env)
					if ok {
						acked[n] = idx
						if onAck != nil {
							onAck(done.Add(1))
						}
						break
					}
					if attempt >= len(nw.urls) {
						time.Sleep(50 * time.Millisecond)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestLeaderKilledUnderLoad is the spine's acceptance test: 3,000 concurrent submissions across a
// 3-node network, the leader SIGKILLed part-way, 1,000 more, the killed node restarted. Every
// acknowledged entry must then be at its index on every node, every node must serve the same
// quorum-cosigned checkpoint, and the root recomputed from the tiles must match it.
func TestLeaderKilledUnderLoad(t *testing.T) {
	leaderKilledUnderLoad(t, startNetwork(t, 3, 17100), 3000, 4000)
}

// TestLeaderKilledUnderLoadOverLibp2p is the same with raft between the members over libp2p
// (peer IDs from the membership, the gater admitting only members).
func TestLeaderKilledUnderLoadOverLibp2p(t *testing.T) {
	leaderKilledUnderLoad(t, startNetwork(t, 3, 17600, "--transport", "libp2p"), 1000, 1500)
}

func leaderKilledUnderLoad(t *testing.T, nw *network, first, total int) {
	s := newSubmitter()
	acked := make([]uint64, total)

	var once sync.Once
	killed := -1
	nw.load(t, s, acked, 0, first, func(done int64) {
		if done == int64(first/2) {
			once.Do(func() {
				killed = nw.leader()
				t.Logf("SIGKILL leader node%d after %d acknowledgements", killed+1, done)
				nw.kill(killed)
			})
		}
	})
	if t.Failed() || killed < 0 {
		t.Fatal("first phase failed")
	}
	nw.load(t, s, acked, first, total, nil)
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("restarting node%d", killed+1)
	nw.start(killed)
	nw.waitHealthy(killed)

	policy := readPolicy(t, filepath.Join(nw.dir, "policy.txt"))
	roots := map[string]bool{}
	for i, u := range nw.urls {
		size, root := waitCheckpoint(t, u, policy, uint64(total))
		roots[fmt.Sprintf("%d/%x", size, root)] = true
		checkEntries(t, u, s, acked, size)
		if got := rootFromTiles(t, u, size); !bytes.Equal(got, root) {
			t.Fatalf("node%d: root from tiles %x, checkpoint %x", i+1, got, root)
		}
	}
	if len(roots) != 1 {
		t.Fatalf("nodes serve different checkpoints: %v", roots)
	}
}

// readPolicy builds note verifiers from policy.txt's log and witness lines, with the standard
// implementations (golang.org/x/mod/sumdb/note, transparency-dev/formats), and the quorum.
func readPolicy(t *testing.T, path string) (p struct {
	verifiers note.Verifiers
	logs      map[string]bool
	witnesses map[string]bool
	quorum    int
}) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []note.Verifier
	p.logs, p.witnesses = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "log":
			v, err := note.NewVerifier(f[1])
			if err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
			p.logs[fmt.Sprintf("%s/%08x", v.Name(), v.KeyHash())] = true
		case len(f) >= 3 && f[0] == "witness":
			v, err := fnote.NewVerifierForCosignatureV1(f[2])
			if err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
			p.witnesses[fmt.Sprintf("%s/%08x", v.Name(), v.KeyHash())] = true
		case len(f) >= 3 && f[0] == "group":
			fmt.Sscan(f[2], &p.quorum)
		}
	}
	p.verifiers = note.VerifierList(vs...)
	return p
}

// waitCheckpoint polls /checkpoint until its size reaches want and returns it once it verifies:
// a log signature and a quorum of distinct witness cosignatures.
func waitCheckpoint(t *testing.T, url string, policy struct {
	verifiers note.Verifiers
	logs      map[string]bool
	witnesses map[string]bool
	quorum    int
}, want uint64) (uint64, []byte) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		b, err := getBytes(url + "/checkpoint")
		if err != nil {
			last = err.Error()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		n, err := note.Open(b, policy.verifiers)
		if err != nil {
			t.Fatalf("%s: checkpoint does not verify: %v\n%s", url, err, b)
		}
		logSigs, cosigs := 0, map[string]bool{}
		for _, s := range n.Sigs {
			k := fmt.Sprintf("%s/%08x", s.Name, s.Hash)
			if policy.logs[k] {
				logSigs++
			}
			if policy.witnesses[k] {
				cosigs[k] = true
			}
		}
		if logSigs == 0 || len(cosigs) < policy.quorum {
			t.Fatalf("%s: checkpoint with %d log signatures and %d cosignatures (quorum %d)", url, logSigs, len(cosigs), policy.quorum)
		}
		lines := strings.Split(n.Text, "\n")
		var size uint64
		fmt.Sscan(lines[1], &size)
		root, _ := base64.StdEncoding.DecodeString(lines[2])
		if size >= want {
			return size, root
		}
		last = fmt.Sprintf("size %d", size)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no checkpoint of size %d (last: %s)", url, want, last)
	return 0, nil
}

// bundles fetches the entry bundles covering size and returns the leaves.
func bundles(t *testing.T, url string, size uint64) [][]byte {
	var leaves [][]byte
	for n := uint64(0); n*256 < size; n++ {
		w := min(256, size-n*256)
		b, err := getBytes(url + "/tile/entries/" + tileIndex(n) + partial(w))
		if err != nil {
			t.Fatal(err)
		}
		for len(b) > 0 {
			l := int(binary.BigEndian.Uint16(b))
			leaves = append(leaves, b[2:2+l])
			b = b[2+l:]
		}
	}
	if uint64(len(leaves)) != size {
		t.Fatalf("%s: bundles hold %d entries, want %d", url, len(leaves), size)
	}
	return leaves
}

func tileIndex(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}

func partial(w uint64) string {
	if w == 256 {
		return ""
	}
	return fmt.Sprintf(".p/%d", w)
}

// checkEntries checks that every acknowledged envelope is at its index, exactly once.
func checkEntries(t *testing.T, url string, s *submitter, acked []uint64, size uint64) {
	t.Helper()
	if size != uint64(len(acked)) {
		t.Fatalf("%s: log size %d, acknowledged %d distinct entries (lost or duplicated)", url, size, len(acked))
	}
	leaves := bundles(t, url, size)
	for n, idx := range acked {
		leaf, err := ledger.ParseLeaf(leaves[idx])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(leaf.Envelope, s.envelope(n)) {
			t.Fatalf("%s: acknowledged entry %d is not at index %d", url, n, idx)
		}
	}
}

// rootFromTiles recomputes the tree root from the level-0 hash tiles and checks them against the
// entry bundles' leaves.
func rootFromTiles(t *testing.T, url string, size uint64) []byte {
	leaves := bundles(t, url, size)
	r := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for n := uint64(0); n*256 < size; n++ {
		w := min(256, size-n*256)
		tile, err := getBytes(url + "/tile/0/" + tileIndex(n) + partial(w))
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(tile)) != w*32 {
			t.Fatalf("tile 0/%d: %d bytes", n, len(tile))
		}
		for i := range w {
			h := tile[i*32 : (i+1)*32]
			if !bytes.Equal(h, rfc6962.DefaultHasher.HashLeaf(leaves[n*256+i])) {
				t.Fatalf("tile 0/%d hash %d does not match its entry", n, i)
			}
			r.Append(h, nil)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}
