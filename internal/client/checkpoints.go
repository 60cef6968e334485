package client

import (
	"bytes"
	"fmt"
	"os"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// Served is one server's verified checkpoint.
type Served struct {
	Server     *API
	Checkpoint *verify.Checkpoint
	Report     *verify.CheckpointReport
}

// FetchCheckpoints gets and verifies every server's checkpoint against the policy, and checks
// that all of them are consistent with each other (one log, not several views of it).
func FetchCheckpoints(policy *verify.Policy, servers []string) ([]Served, error) {
	var out []Served
	for _, s := range servers {
		a := NewAPI(s)
		note, err := a.Checkpoint()
		if err != nil {
			return nil, err
		}
		cp, rep, err := policy.VerifyCheckpoint(note)
		if err != nil {
			return nil, fmt.Errorf("%s: checkpoint: %w", s, err)
		}
		out = append(out, Served{Server: a, Checkpoint: cp, Report: rep})
	}
	for i := range out {
		for j := range out {
			if i == j || out[i].Checkpoint.Size > out[j].Checkpoint.Size {
				continue
			}
			if err := CheckConsistent(out[j].Server, out[i].Checkpoint, out[j].Checkpoint); err != nil {
				return nil, fmt.Errorf("%s and %s serve inconsistent checkpoints: %w", out[i].Server.base, out[j].Server.base, err)
			}
		}
	}
	return out, nil
}

// CheckConsistent proves with a's help that checkpoint older is a prefix of newer.
func CheckConsistent(a *API, older, newer *verify.Checkpoint) error {
	if older.Size == newer.Size {
		if !bytes.Equal(older.Root, newer.Root) {
			return fmt.Errorf("%w: size %d with two roots", ErrCheck, older.Size)
		}
		return nil
	}
	if older.Size == 0 {
		return nil
	}
	var p ConsistencyProof
	if err := a.GetJSON(fmt.Sprintf("/v1/proof/consistency?old=%d&size=%d", older.Size, newer.Size), &p); err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, p.Hashes, older.Root, newer.Root); err != nil {
		return fmt.Errorf("%w: %v", ErrCheck, err)
	}
	return nil
}

func LoadPolicy(path string) (*verify.Policy, error) {
	if path == "" {
		return nil, usagef("--policy is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return verify.ParsePolicy(b)
}
