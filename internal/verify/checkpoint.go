package verify

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a parsed C2SP tlog-checkpoint body.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       []byte
	Extensions []string
	Text       string // the body exactly as signed
}

// ParseCheckpoint parses a checkpoint body: origin, decimal size, base64 root hash, then
// optional extension lines, each line ending in a newline.
func ParseCheckpoint(text string) (*Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" || lines[0] == "" {
		return nil, fmt.Errorf("%w: checkpoint: want origin, size and root hash lines", ErrMalformed)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || lines[1] != strconv.FormatUint(size, 10) {
		return nil, fmt.Errorf("%w: checkpoint size %q", ErrMalformed, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return nil, fmt.Errorf("%w: checkpoint root hash %q", ErrMalformed, lines[2])
	}
	ext := lines[3 : len(lines)-1]
	if slices.Contains(ext, "") {
		return nil, fmt.Errorf("%w: checkpoint has an empty extension line", ErrMalformed)
	}
	return &Checkpoint{Origin: lines[0], Size: size, Root: root, Extensions: ext, Text: text}, nil
}

// CheckpointReport says who signed a checkpoint that a policy accepted.
type CheckpointReport struct {
	LogKeys    []string // names+hashes of valid log signatures
	Cosigners  []string // distinct witnesses with a valid cosignature
	Unverified int      // signature lines from keys the policy does not know
}

// VerifyCheckpoint opens a signed checkpoint note and checks it against the policy: at least
// one valid signature by a policy log key, and a quorum of valid cosignatures from distinct
// policy witnesses. Signatures by unknown keys are ignored; a known key's bad signature fails.
func (p *Policy) VerifyCheckpoint(signed []byte) (*Checkpoint, *CheckpointReport, error) {
	vs := append(p.LogVerifiers(), p.WitnessVerifiers()...)
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, nil, fmt.Errorf("%w: no signature by a key in the policy", ErrNoLogSignature)
		}
		return nil, nil, fmt.Errorf("%w: checkpoint note: %v", ErrMalformed, err)
	}
	cp, err := ParseCheckpoint(n.Text)
	if err != nil {
		return nil, nil, err
	}
	rep := &CheckpointReport{Unverified: len(n.UnverifiedSigs)}
	seen := map[string]bool{}
	for _, s := range n.Sigs {
		if isLog := slices.ContainsFunc(p.Logs, func(l PolicyLog) bool {
			return l.Verifier.Name() == s.Name && l.Verifier.KeyHash() == s.Hash
		}); isLog {
			// A log signs checkpoints under a key named after its origin.
			if s.Name == cp.Origin {
				rep.LogKeys = append(rep.LogKeys, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			continue
		}
		for _, w := range p.Witnesses {
			if w.Verifier.Name() == s.Name && w.Verifier.KeyHash() == s.Hash && !seen[w.Name] {
				seen[w.Name] = true
				rep.Cosigners = append(rep.Cosigners, w.Name)
			}
		}
	}
	if len(rep.LogKeys) == 0 {
		return nil, rep, fmt.Errorf("%w: checkpoint for %s", ErrNoLogSignature, cp.Origin)
	}
	if !p.Satisfied(rep.Cosigners) {
		return cp, rep, fmt.Errorf("%w: cosigned by %v, policy quorum %q not satisfied", ErrQuorumNotMet, rep.Cosigners, p.Quorum)
	}
	return cp, rep, nil
}
