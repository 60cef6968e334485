package client

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/witnessnet/witnessnet/internal/durable"
	"github.com/witnessnet/witnessnet/internal/ledger"
	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// AuditConfig says what to audit and where the auditor keeps its state.
type AuditConfig struct {
	Servers  []string
	Policy   *verify.Policy
	StateDir string // holds checkpoint.note (last verified) and evidence-*.json
	// Full downloads every entry from the tiles, re-verifies its signatures and recomputes the
	// root of the newest checkpoint.
	Full     bool
	Progress func(done, total uint64)
}

// AuditReport is what an audit found.
type AuditReport struct {
	Size          uint64   `json:"size"`
	Cosigners     []string `json:"cosigners"`
	Previous      uint64   `json:"previous_size"`
	Servers       []string `json:"servers"`
	Entries       uint64   `json:"entries_verified,omitempty"`
	EvidenceFiles []string `json:"evidence_files,omitempty"`
	// Behind lists the servers whose checkpoint is older than the newest one seen (the
	// auditor's stored state included): stale, partitioned or withholding newer entries. Their
	// checkpoints were checked for consistency like every other; being behind is not a fork,
	// but a consumer relying on them would miss the entries since.
	Behind []Lag `json:"behind,omitempty"`
	// Gossiped counts the checkpoints heard by gossip (through the servers) that were compared
	// with the rest.
	Gossiped int `json:"gossiped_checkpoints,omitempty"`
}

// Lag is a server that serves an older checkpoint than the newest seen.
type Lag struct {
	Server string `json:"server"`
	Size   uint64 `json:"size"`
	Newest uint64 `json:"newest"`
}

// seen is a checkpoint and where it came from.
type seen struct {
	source string
	api    *API // nil for the auditor's stored state
	note   []byte
	cp     *verify.Checkpoint
	rep    *verify.CheckpointReport
	gossip bool // heard by gossip, relayed by api's node: compared, never adopted as state
}

const stateFile = "checkpoint.note"

// Audit checks that the log only grows and that every server shows the same log: each server's
// checkpoint against the policy, against the auditor's last verified checkpoint, and against each
// other. Any inconsistency is written as an evidence file and reported as ErrCheck. On success
// the newest checkpoint becomes the auditor's state.
func Audit(cfg AuditConfig) (*AuditReport, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	rep := &AuditReport{Servers: cfg.Servers}
	var all []seen
	if prev, err := os.ReadFile(filepath.Join(cfg.StateDir, stateFile)); err == nil {
		cp, r, err := cfg.Policy.VerifyCheckpoint(prev)
		if err != nil {
			return nil, fmt.Errorf("stored state %s: %w", stateFile, err)
		}
		all = append(all, seen{source: "state", note: prev, cp: cp, rep: r})
		rep.Previous = cp.Size
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, s := range cfg.Servers {
		a := NewAPI(s)
		note, err := a.Checkpoint()
		if err != nil {
			return nil, err
		}
		cp, r, err := cfg.Policy.VerifyCheckpoint(note)
		if err != nil {
			return nil, fmt.Errorf("%s: checkpoint: %w", s, err)
		}
		all = append(all, seen{source: s, api: a, note: note, cp: cp, rep: r})
	}
	heard := gossiped(cfg.Policy, all)
	rep.Gossiped = len(heard)
	all = append(all, heard...)
	evidence, unchecked := compareAll(cfg.Policy, all)
	for _, e := range evidence {
		path, err := writeEvidence(cfg.StateDir, e)
		if err != nil {
			return rep, err
		}
		rep.EvidenceFiles = append(rep.EvidenceFiles, path)
	}
	if len(evidence) > 0 {
		return rep, fmt.Errorf("%w: %d inconsistency(ies); evidence in %v", ErrCheck, len(evidence), rep.EvidenceFiles)
	}
	if len(unchecked) > 0 {
		// Not evidence of anything, and not a pass either: the state stays where it was.
		return rep, fmt.Errorf("could not check consistency, state not updated: %s", strings.Join(unchecked, "; "))
	}
	newest := all[0]
	for _, s := range all[1:] {
		if !s.gossip && s.cp.Size > newest.cp.Size {
			newest = s
		}
	}
	rep.Size, rep.Cosigners = newest.cp.Size, newest.rep.Cosigners
	for _, s := range all {
		if s.api != nil && !s.gossip && s.cp.Size < newest.cp.Size {
			rep.Behind = append(rep.Behind, Lag{Server: s.source, Size: s.cp.Size, Newest: newest.cp.Size})
		}
	}
	if cfg.Full && newest.api != nil {
		n, err := verifyAllEntries(newest.api, newest.cp, cfg.Progress)
		rep.Entries = n
		if err != nil {
			return rep, err
		}
	}
	return rep, durable.ReplaceFile(filepath.Join(cfg.StateDir, stateFile), newest.note)
}

// gossiped returns the checkpoints that the servers heard from other members by gossip
// (GET /v1/gossip) and that satisfy the policy, each relayed by the node that heard it: what the
// members published among themselves is compared with what each node serves. A node without
// gossip, or an older one without the endpoint, contributes nothing.
func gossiped(p *verify.Policy, direct []seen) []seen {
	var out []seen
	known := map[string]bool{}
	for _, s := range direct {
		known[string(s.note)] = true
	}
	for _, s := range direct {
		if s.api == nil {
			continue
		}
		var resp struct {
			Checkpoints []string `json:"checkpoints"`
		}
		if s.api.GetJSON("/v1/gossip", &resp) != nil {
			continue
		}
		for _, n := range resp.Checkpoints {
			if known[n] {
				continue
			}
			known[n] = true
			cp, r, err := p.VerifyCheckpoint([]byte(n))
			if err != nil {
				continue
			}
			out = append(out, seen{source: s.source + " (gossip)", api: s.api, note: []byte(n), cp: cp, rep: r, gossip: true})
		}
	}
	return out
}

// compareAll checks every pair of checkpoints and returns evidence for each inconsistent pair,
// and the pairs it could not check because the server of the larger checkpoint did not give a
// consistency proof. Pairs that involve a checkpoint heard by gossip are checked when a proof
// can be had and otherwise left: they widen the view, they are not what the audit vouches for.
func compareAll(p *verify.Policy, all []seen) (out []*verify.Evidence, unchecked []string) {
	for i := range all {
		for j := range all {
			a, b := all[i], all[j]
			if i == j || a.cp.Size > b.cp.Size || (a.cp.Size == b.cp.Size && i > j) {
				continue
			}
			if a.cp.Size == b.cp.Size {
				if !bytes.Equal(a.cp.Root, b.cp.Root) {
					if e, err := verify.NewEvidence(p, a.note, b.note, nil, a.source, b.source); err == nil {
						out = append(out, e)
					}
				}
				continue
			}
			prover := b.api
			if prover == nil {
				continue // the stored state is older than every server's: compared from their side
			}
			var cp ConsistencyProof
			if a.cp.Size == 0 {
				continue
			}
			if err := prover.GetJSON(fmt.Sprintf("/v1/proof/consistency?old=%d&size=%d", a.cp.Size, b.cp.Size), &cp); err != nil {
				if !a.gossip && !b.gossip {
					unchecked = append(unchecked, fmt.Sprintf("%s (size %d) against %s (size %d): %v", a.source, a.cp.Size, b.source, b.cp.Size, err))
				}
				continue
			}
			if e, err := verify.NewEvidence(p, a.note, b.note, cp.Hashes, a.source, b.source); err == nil {
				out = append(out, e)
			}
		}
	}
	return out, unchecked
}

func writeEvidence(dir string, e *verify.Evidence) (string, error) {
	data, _ := json.MarshalIndent(e, "", "  ")
	path := filepath.Join(dir, fmt.Sprintf("evidence-%d.json", time.Now().UnixNano()))
	return path, durable.ReplaceFile(path, append(data, '\n'))
}

// verifyAllEntries downloads every entry bundle up to the checkpoint, re-verifies each entry's
// signatures (links against their layout's functionaries, others against the keys sent with
// them) and recomputes the root.
func verifyAllEntries(a *API, cp *verify.Checkpoint, progress func(done, total uint64)) (uint64, error) {
	r := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	layouts := map[string]*intoto.Layout{}
	var done uint64
	for n := uint64(0); n*256 < cp.Size; n++ {
		w := min(256, cp.Size-n*256)
		_, data, err := a.Do("GET", "/tile/entries/"+TileIndex(n)+partialSuffix(w), nil)
		if err != nil {
			return done, err
		}
		leaves, err := splitBundle(data)
		if err != nil || uint64(len(leaves)) != w {
			return done, fmt.Errorf("%w: entry bundle %d is malformed or holds the wrong number of entries", ErrCheck, n)
		}
		for i, leaf := range leaves {
			idx := n*256 + uint64(i)
			if err := checkEntry(a, idx, leaf, layouts); err != nil {
				return done, fmt.Errorf("%w: entry %d: %v", ErrCheck, idx, err)
			}
			if err := r.Append(rfc6962.DefaultHasher.HashLeaf(leaf), nil); err != nil {
				return done, err
			}
			done++
		}
		if progress != nil {
			progress(done, cp.Size)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return done, err
	}
	if !bytes.Equal(root, cp.Root) {
		return done, fmt.Errorf("%w: the entries hash to a root other than the checkpoint's", ErrCheck)
	}
	return done, nil
}

// checkEntry re-verifies one entry's signatures, under the rules admission checked them by.
func checkEntry(a *API, idx uint64, leafData []byte, layouts map[string]*intoto.Layout) error {
	leaf, err := ledger.ParseLeaf(leafData)
	if err != nil {
		return err
	}
	env := leaf.Envelope
	if env == nil {
		en, err := FetchEntry(a, fmt.Sprint(idx))
		if err != nil {
			return err
		}
		env = en.Envelope
	}
	m, err := intoto.ParseMetadata(env)
	if err != nil {
		return err
	}
	id := ledger.IdentityOf(env).String()
	if m.Kind == intoto.KindLayout {
		layouts[id] = m.Layout
	}
	if leaf.Layout != "" {
		l, ok := layouts[leaf.Layout]
		if !ok || m.Link == nil {
			return fmt.Errorf("a link of layout %s, which is not earlier in the log", leaf.Layout)
		}
		step, ok := l.Step(m.Link.Name)
		if !ok {
			return fmt.Errorf("layout %s has no step %q", leaf.Layout, m.Link.Name)
		}
		// Admission's rules, not the verification engine's (see intoto.Admission).
		var adm intoto.Admission
		signers, bad := adm.CheckLink(m, l.Functionaries(step), step)
		if len(bad) > 0 || len(m.Signatures) == 0 {
			return fmt.Errorf("a signature is not by a functionary of step %s", step.Name)
		}
		// A threshold link is appended only once k distinct functionaries signed it; fewer means
		// a member put it in the log past admission.
		if n := len(signers); n < step.Threshold {
			return fmt.Errorf("a link of step %s (threshold %d) signed by %d distinct functionaries", step.Name, step.Threshold, n)
		}
		return nil
	}
	var keys []*intoto.Key
	for _, s := range leaf.PublicKeys {
		k, err := intoto.ParseKeyPEM([]byte(s), "")
		if err != nil {
			if k, err = intoto.ParseKeyJSON([]byte(s)); err != nil {
				return err
			}
		}
		keys = append(keys, k)
	}
	var adm intoto.Admission
	if _, bad := adm.Check(m, keys); len(bad) > 0 || len(m.Signatures) == 0 {
		return errors.New("a signature does not verify under the keys sent with it")
	}
	return nil
}

func splitBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("truncated")
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return nil, errors.New("truncated")
		}
		out = append(out, b[2:2+l])
		b = b[2+l:]
	}
	return out, nil
}

// TileIndex renders a C2SP tlog-tiles index: groups of three digits, all but the last prefixed
// with x.
func TileIndex(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}

func partialSuffix(w uint64) string {
	if w == 256 {
		return ""
	}
	return fmt.Sprintf(".p/%d", w)
}

// CheckEvidenceFile verifies an evidence file offline under the policy and returns it.
func CheckEvidenceFile(p *verify.Policy, path string) (*verify.Evidence, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e, err := verify.ParseEvidence(data)
	if err != nil {
		return nil, err
	}
	both, err := e.Check(p)
	if err != nil {
		return nil, err
	}
	e.SignedBoth = both
	return e, nil
}
