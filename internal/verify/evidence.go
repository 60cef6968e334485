package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrNotEvidence means an evidence file does not show misbehaviour: a signature does not verify,
// or the two checkpoints are consistent after all.
var ErrNotEvidence = errors.New("not evidence of inconsistency")

// EvidenceFormat names the evidence format.
const EvidenceFormat = "witnessnet-evidence/v1"

// Evidence records two checkpoints of one log that cannot both be true, each signed by the log
// and cosigned by witnesses. It is portable: Check needs only the policy.
//
// A fork is two checkpoints of the same size with different roots: proof by itself. Otherwise the
// evidence carries the consistency proof the log served between the two sizes, which does not
// verify; that shows the log could not prove it only grew.
type Evidence struct {
	Format  string    `json:"format"`
	Kind    string    `json:"kind"` // "fork" or "inconsistent"
	Older   string    `json:"older"`
	Newer   string    `json:"newer"`
	Proof   [][]byte  `json:"proof,omitempty"`
	Sources []string  `json:"sources,omitempty"` // where each checkpoint came from
	Found   time.Time `json:"found"`
	// SignedBoth names the witnesses (and log keys) with valid signatures on both checkpoints.
	SignedBoth []string `json:"signed_both"`
}

// NewEvidence builds evidence from two signed checkpoints and, for different sizes, the
// consistency proof served between them. It returns ErrNotEvidence if they are consistent.
func NewEvidence(p *Policy, older, newer []byte, proofHashes [][]byte, sources ...string) (*Evidence, error) {
	e := &Evidence{Format: EvidenceFormat, Older: string(older), Newer: string(newer), Proof: proofHashes, Sources: sources, Found: time.Now().UTC()}
	both, err := e.Check(p)
	if err != nil {
		return nil, err
	}
	e.SignedBoth = both
	return e, nil
}

// Check verifies the evidence under a policy: both checkpoints satisfy the policy, and they are
// inconsistent. It returns who signed both.
func (e *Evidence) Check(p *Policy) ([]string, error) {
	if e.Format != EvidenceFormat {
		return nil, fmt.Errorf("%w: format %q", ErrNotEvidence, e.Format)
	}
	a, ra, err := p.VerifyCheckpoint([]byte(e.Older))
	if err != nil {
		return nil, fmt.Errorf("%w: older checkpoint: %v", ErrNotEvidence, err)
	}
	b, rb, err := p.VerifyCheckpoint([]byte(e.Newer))
	if err != nil {
		return nil, fmt.Errorf("%w: newer checkpoint: %v", ErrNotEvidence, err)
	}
	if a.Origin != b.Origin {
		return nil, fmt.Errorf("%w: checkpoints of two logs (%s, %s)", ErrNotEvidence, a.Origin, b.Origin)
	}
	switch {
	case a.Size == b.Size:
		if bytes.Equal(a.Root, b.Root) {
			return nil, fmt.Errorf("%w: same size, same root", ErrNotEvidence)
		}
		e.Kind = "fork"
	case a.Size > b.Size:
		return nil, fmt.Errorf("%w: the older checkpoint is larger", ErrNotEvidence)
	default:
		if a.Size > 0 && proof.VerifyConsistency(rfc6962.DefaultHasher, a.Size, b.Size, e.Proof, a.Root, b.Root) == nil {
			return nil, fmt.Errorf("%w: the proof shows the checkpoints are consistent", ErrNotEvidence)
		}
		if a.Size == 0 {
			return nil, fmt.Errorf("%w: every tree is consistent with the empty tree", ErrNotEvidence)
		}
		e.Kind = "inconsistent"
	}
	var both []string
	for _, n := range append(ra.Cosigners, ra.LogKeys...) {
		if slices.Contains(rb.Cosigners, n) || slices.Contains(rb.LogKeys, n) {
			both = append(both, n)
		}
	}
	slices.Sort(both)
	return slices.Compact(both), nil
}

// ParseEvidence reads an evidence file.
func ParseEvidence(data []byte) (*Evidence, error) {
	var e Evidence
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotEvidence, err)
	}
	return &e, nil
}
