package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Sentinel errors of the update rule.
var (
	// ErrInconsistent means the new checkpoint is not consistent with the last one cosigned for its
	// origin: cosigning it would put the witness's signature on two views of one log.
	ErrInconsistent = errors.New("inconsistent with the last cosigned checkpoint")
	// ErrRollback means the new checkpoint is smaller than the last one cosigned.
	ErrRollback = errors.New("smaller than the last cosigned checkpoint")
	// ErrMalformed means the checkpoint text does not parse.
	ErrMalformed = errors.New("malformed checkpoint")
)

// Checkpoint is the part of a C2SP tlog-checkpoint body the rule needs.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
}

// ParseCheckpoint parses a C2SP tlog-checkpoint body: origin line, decimal size line, base64
// root hash line, then optional extension lines.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" || lines[0] == "" {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root hash lines", ErrMalformed)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || lines[1] != strconv.FormatUint(size, 10) {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrMalformed, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q", ErrMalformed, lines[2])
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// State is what a witness remembers per origin: the last checkpoint it cosigned.
type State struct {
	Size uint64
	Root []byte
}

// Decide is the witness update rule, a pure function: given the last cosigned state (nil for
// none) and a new checkpoint with a consistency proof from the last size, it returns the new state
// or says why the witness MUST NOT cosign.
//
// A witness with no state accepts only a proof from the empty tree, that is any checkpoint: there
// is no trust on first use to exploit because the first checkpoint commits to everything after it.
func Decide(last *State, cp Checkpoint, consistency [][]byte) (State, error) {
	next := State{Size: cp.Size, Root: cp.Root}
	if last == nil || last.Size == 0 {
		return next, nil
	}
	switch {
	case cp.Size < last.Size:
		return State{}, fmt.Errorf("%w: size %d after %d", ErrRollback, cp.Size, last.Size)
	case cp.Size == last.Size:
		if !bytes.Equal(cp.Root, last.Root) {
			return State{}, fmt.Errorf("%w: size %d has root %s, cosigned %s", ErrInconsistent, cp.Size, b64(cp.Root), b64(last.Root))
		}
		return next, nil
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, last.Size, cp.Size, consistency, last.Root, cp.Root); err != nil {
		return State{}, fmt.Errorf("%w: %d (%s) to %d (%s): %v", ErrInconsistent, last.Size, b64(last.Root), cp.Size, b64(cp.Root), err)
	}
	return next, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
