package compose

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// NodeLog is one node's whole log as it served it: the Merkle leaf data at each index.
type NodeLog struct {
	Node   string
	Leaves [][]byte
}

// leafData is the Merkle leaf data of an entry, as the node API defines it: the envelope is
// either embedded, its bytes as sent being the member's JSON value, or base64.
type leafData struct {
	Envelope       json.RawMessage `json:"envelope"`
	EnvelopeSHA256 string          `json:"envelope_sha256"`
	Layout         string          `json:"layout"`
	PublicKeys     []string        `json:"public_keys"`
}

// Identity returns "sha256:<hex>" of the envelope a leaf carries or commits to.
func Identity(leaf []byte) (string, error) {
	var l leafData
	if err := json.Unmarshal(leaf, &l); err != nil {
		return "", fmt.Errorf("leaf: %w", err)
	}
	switch {
	case len(l.Envelope) > 0 && l.Envelope[0] == '{':
		return EnvelopeIdentity(l.Envelope), nil
	case len(l.Envelope) > 0:
		var env []byte
		if err := json.Unmarshal(l.Envelope, &env); err != nil {
			return "", fmt.Errorf("leaf: envelope: %w", err)
		}
		return EnvelopeIdentity(env), nil
	case l.EnvelopeSHA256 != "":
		return "sha256:" + l.EnvelopeSHA256, nil
	}
	return "", fmt.Errorf("leaf carries no envelope")
}

// EnvelopeIdentity is the entry identity of an envelope's bytes as sent.
func EnvelopeIdentity(env []byte) string {
	sum := sha256.Sum256(env)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Identities maps each leaf of a log to its entry identity.
func (l NodeLog) Identities() ([]string, error) {
	out := make([]string, len(l.Leaves))
	for i, leaf := range l.Leaves {
		id, err := Identity(leaf)
		if err != nil {
			return nil, fmt.Errorf("%s index %d: %w", l.Node, i, err)
		}
		out[i] = id
	}
	return out, nil
}

// CheckLogs checks the converged logs against the history: every node holds the same log,
// without duplicates, with every acknowledged append at its index, and with no entry whose append
// was definitely refused. It returns the converged log's identity-to-index map.
func CheckLogs(ops []Op, logs []NodeLog) (map[string]uint64, []error) {
	if len(logs) == 0 {
		return nil, []error{fmt.Errorf("no logs to check")}
	}
	var errs []error
	ref, err := logs[0].Identities()
	if err != nil {
		return nil, []error{err}
	}
	for _, l := range logs[1:] {
		errs = append(errs, compareLogs(logs[0], l)...)
	}
	final := make(map[string]uint64, len(ref))
	for i, id := range ref {
		if j, dup := final[id]; dup {
			errs = append(errs, fmt.Errorf("duplicate: %s at indexes %d and %d", id, j, i))
			continue
		}
		final[id] = uint64(i)
	}
	for _, op := range ops {
		if op.Kind != Append {
			continue
		}
		idx, in := final[op.Entry]
		switch {
		case op.Outcome == Ok && !in:
			errs = append(errs, fmt.Errorf("lost: %s acknowledged at %d by %s is in no log", op.Entry, op.Index, op.Node))
		case op.Outcome == Ok && idx != op.Index:
			errs = append(errs, fmt.Errorf("moved: %s acknowledged at %d by %s is at %d", op.Entry, op.Index, op.Node, idx))
		case op.Outcome == Failed && in:
			errs = append(errs, fmt.Errorf("refused but appended: %s (%d %s from %s) is at %d", op.Entry, op.Status, op.Err, op.Node, idx))
		}
	}
	return final, errs
}

// compareLogs reports where two nodes' logs differ (at most a few differences).
func compareLogs(a, b NodeLog) []error {
	var errs []error
	if len(a.Leaves) != len(b.Leaves) {
		errs = append(errs, fmt.Errorf("not converged: %s has %d entries, %s has %d", a.Node, len(a.Leaves), b.Node, len(b.Leaves)))
	}
	for i := range min(len(a.Leaves), len(b.Leaves)) {
		if !bytes.Equal(a.Leaves[i], b.Leaves[i]) {
			errs = append(errs, fmt.Errorf("fork: %s and %s differ at index %d", a.Node, b.Node, i))
			if len(errs) > 5 {
				break
			}
		}
	}
	return errs
}

// Roots computes the RFC 6962 root of the log's first n leaves for every n in sizes.
func Roots(leaves [][]byte, sizes []uint64) (map[uint64][]byte, error) {
	want := append([]uint64(nil), sizes...)
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	out := make(map[uint64][]byte, len(want))
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	next := 0
	for _, size := range want {
		if size > uint64(len(leaves)) {
			return out, fmt.Errorf("size %d beyond the log's %d entries", size, len(leaves))
		}
		for ; uint64(next) < size; next++ {
			if err := r.Append(rfc6962.DefaultHasher.HashLeaf(leaves[next]), nil); err != nil {
				return out, err
			}
		}
		if size == 0 {
			out[0] = rfc6962.DefaultHasher.EmptyRoot()
			continue
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			return out, err
		}
		out[size] = root
	}
	return out, nil
}

// CheckCheckpoints checks every checkpoint observed during the run against the converged log:
// each one's root MUST be the root of the log's first Size leaves. Two checkpoints of one size
// with different roots would fail that for at least one of them, so this is also the fork check
// over everything the nodes ever published.
func CheckCheckpoints(cps []Checkpoint, leaves [][]byte) []error {
	sizes := make([]uint64, 0, len(cps))
	for _, c := range cps {
		sizes = append(sizes, c.Size)
	}
	roots, err := Roots(leaves, sizes)
	if err != nil {
		return []error{fmt.Errorf("published checkpoint beyond the converged log: %w", err)}
	}
	var errs []error
	for _, c := range cps {
		if !bytes.Equal(roots[c.Size], c.Root) {
			errs = append(errs, fmt.Errorf("fork: %s published size %d root %x, the converged log's root there is %x",
				c.Node, c.Size, c.Root, roots[c.Size]))
		}
	}
	return errs
}

// MonotonicReads checks that no node forgets: once a node served the entry at an index, it MUST
// NOT later answer not found for that index (its applied state is durable). exempt lists nodes
// whose stored data the suite damaged on purpose.
func MonotonicReads(ops []Op, exempt map[string]bool) []error {
	seen := map[string]map[uint64]int64{} // node -> index -> earliest return of a found read
	for _, op := range ops {
		if op.Kind == Read && op.Outcome == Ok && op.Found {
			m := seen[op.Node]
			if m == nil {
				m = map[uint64]int64{}
				seen[op.Node] = m
			}
			if t, ok := m[op.Index]; !ok || op.Return < t {
				m[op.Index] = op.Return
			}
		}
	}
	var errs []error
	for _, op := range ops {
		if op.Kind != Read || op.Outcome != Ok || op.Found || exempt[op.Node] {
			continue
		}
		if t, ok := seen[op.Node][op.Index]; ok && t < op.Call {
			errs = append(errs, fmt.Errorf("%s served index %d, then answered not found at %v", op.Node, op.Index, op.Call))
		}
	}
	return errs
}

// Disputed is a checkpoint root that members cosigned and another member's tree disagreed with
// (a node's /v1/evidence).
type Disputed struct {
	Size    uint64
	Root    []byte
	Signers []string
	Found   string // the node that holds the evidence
}

// ExplainFork says what the nodes' logs, fetched up to one size after they diverged, show about
// the divergence: where each node's entries first differ from the first node's, which node's
// level-0 hash tiles disagree with its own entries, and whose entries each disputed root is the
// root of. Different entries point at what the nodes applied (the commands, deduplication);
// the same entries under different roots point at the Merkle storage of the node whose root
// matches no entries. tiles holds each node's level-0 hashes (may be missing for a node).
func ExplainFork(logs []NodeLog, tiles map[string][][]byte, disputed []Disputed) []string {
	var out []string
	if len(logs) == 0 {
		return []string{"no node's log could be fetched"}
	}
	base := logs[0]
	for _, l := range logs[1:] {
		n := min(len(base.Leaves), len(l.Leaves))
		first := -1
		differ := 0
		for i := range n {
			if !bytes.Equal(base.Leaves[i], l.Leaves[i]) {
				if first < 0 {
					first = i
				}
				differ++
			}
		}
		if first < 0 {
			out = append(out, fmt.Sprintf("%s and %s hold the same %d entries", base.Node, l.Node, n))
			continue
		}
		msg := fmt.Sprintf("%s and %s hold different entries from index %d on (%d of the first %d differ)", base.Node, l.Node, first, differ, n)
		if moved := findLeaf(l.Leaves, base.Leaves[first]); moved >= 0 {
			msg += fmt.Sprintf("; %s's entry %d is %s's entry %d", base.Node, first, l.Node, moved)
		} else {
			msg += fmt.Sprintf("; %s's entry %d is not in %s's log", base.Node, first, l.Node)
		}
		if moved := findLeaf(base.Leaves, l.Leaves[first]); moved >= 0 {
			msg += fmt.Sprintf("; %s's entry %d is %s's entry %d", l.Node, first, base.Node, moved)
		} else {
			msg += fmt.Sprintf("; %s's entry %d is not in %s's log", l.Node, first, base.Node)
		}
		out = append(out, msg)
	}
	for _, l := range logs {
		hashes, ok := tiles[l.Node]
		if !ok {
			continue
		}
		bad := -1
		for i := range min(len(hashes), len(l.Leaves)) {
			if !bytes.Equal(hashes[i], rfc6962.DefaultHasher.HashLeaf(l.Leaves[i])) {
				bad = i
				break
			}
		}
		if bad >= 0 {
			out = append(out, fmt.Sprintf("%s's level-0 hash tile disagrees with its own entry %d", l.Node, bad))
		} else {
			out = append(out, fmt.Sprintf("%s's level-0 hashes match its %d entries", l.Node, min(len(hashes), len(l.Leaves))))
		}
	}
	for _, d := range disputed {
		var whose []string
		for _, l := range logs {
			if d.Size > uint64(len(l.Leaves)) {
				continue
			}
			if r, err := Roots(l.Leaves, []uint64{d.Size}); err == nil && bytes.Equal(r[d.Size], d.Root) {
				whose = append(whose, l.Node)
			}
		}
		switch {
		case d.Size > uint64(len(base.Leaves)):
			out = append(out, fmt.Sprintf("root at %d cosigned by %v (evidence on %s): beyond the entries fetched", d.Size, d.Signers, d.Found))
		case len(whose) == 0:
			out = append(out, fmt.Sprintf("root at %d cosigned by %v (evidence on %s) is the root of no node's entries: a Merkle storage fault", d.Size, d.Signers, d.Found))
		default:
			out = append(out, fmt.Sprintf("root at %d cosigned by %v (evidence on %s) is the root of the entries of %v", d.Size, d.Signers, d.Found, whose))
		}
	}
	return out
}

func findLeaf(leaves [][]byte, leaf []byte) int {
	for i, l := range leaves {
		if bytes.Equal(l, leaf) {
			return i
		}
	}
	return -1
}
