package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/witnessnet/witnessnet/internal/verify"
)

// served is one server's verified checkpoint.
type served struct {
	api    *api
	cp     *verify.Checkpoint
	report *verify.CheckpointReport
}

// fetchCheckpoints gets and verifies every server's checkpoint against the policy, and checks
// that all of them are consistent with each other (one log, not several views of it).
func fetchCheckpoints(policy *verify.Policy, servers []string) ([]served, error) {
	var out []served
	for _, s := range servers {
		a := newAPI(s)
		note, err := a.checkpoint()
		if err != nil {
			return nil, err
		}
		cp, rep, err := policy.VerifyCheckpoint(note)
		if err != nil {
			return nil, fmt.Errorf("%s: checkpoint: %w", s, err)
		}
		out = append(out, served{api: a, cp: cp, report: rep})
	}
	for i := range out {
		for j := range out {
			if i == j || out[i].cp.Size > out[j].cp.Size {
				continue
			}
			if err := checkConsistent(out[j].api, out[i].cp, out[j].cp); err != nil {
				return nil, fmt.Errorf("%s and %s serve inconsistent checkpoints: %w", out[i].api.base, out[j].api.base, err)
			}
		}
	}
	return out, nil
}

// checkConsistent proves with a's help that checkpoint older is a prefix of newer.
func checkConsistent(a *api, older, newer *verify.Checkpoint) error {
	if older.Size == newer.Size {
		if !bytes.Equal(older.Root, newer.Root) {
			return fmt.Errorf("%w: size %d with two roots", errCheck, older.Size)
		}
		return nil
	}
	if older.Size == 0 {
		return nil
	}
	var p consistencyProof
	if err := a.getJSON(fmt.Sprintf("/v1/proof/consistency?old=%d&size=%d", older.Size, newer.Size), &p); err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, p.Hashes, older.Root, newer.Root); err != nil {
		return fmt.Errorf("%w: %v", errCheck, err)
	}
	return nil
}

func loadPolicy(path string) (*verify.Policy, error) {
	if path == "" {
		return nil, usagef("--policy is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return verify.ParsePolicy(b)
}

type proveResult struct {
	OK             bool     `json:"ok"`
	Index          uint64   `json:"index"`
	Entry          string   `json:"entry"`
	CheckpointSize uint64   `json:"checkpoint_size"`
	Root           []byte   `json:"root"`
	Cosigners      []string `json:"cosigners"`
	Servers        []string `json:"servers"`
}

func runProve(e *env, args []string) error {
	fs := e.flags("prove")
	servers := fs.StringArray("server", nil, "base URL of a node; repeat to cross-check several")
	policyPath := fs.String("policy", "", "C2SP tlog-policy file: log keys, witnesses, quorum")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if len(*servers) == 0 {
		return usagef("--server is required")
	}
	policy, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	cps, err := fetchCheckpoints(policy, *servers)
	if err != nil {
		return err
	}
	first := cps[0]
	en, err := fetchEntry(first.api, fs.Arg(0))
	if err != nil {
		return err
	}
	if en.Index >= first.cp.Size {
		return fmt.Errorf("%w: entry %d is not yet covered by the cosigned checkpoint (size %d); try again shortly", errCheck, en.Index, first.cp.Size)
	}
	var p inclusionProof
	if err := first.api.getJSON(fmt.Sprintf("/v1/proof/inclusion?index=%d&size=%d", en.Index, first.cp.Size), &p); err != nil {
		return err
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, en.Index, first.cp.Size, rfc6962.DefaultHasher.HashLeaf(en.Leaf), p.Hashes, first.cp.Root); err != nil {
		return fmt.Errorf("%w: inclusion of entry %d: %v", errCheck, en.Index, err)
	}
	cosigners := slices.Clone(first.report.Cosigners)
	slices.Sort(cosigners)
	res := proveResult{OK: true, Index: en.Index, Entry: en.Entry, CheckpointSize: first.cp.Size, Root: first.cp.Root, Cosigners: cosigners, Servers: *servers}
	e.result(res, fmt.Sprintf("OK: entry %d (%s) is in the log\ncheckpoint size %d, cosigned by %s\n",
		en.Index, en.Entry, first.cp.Size, strings.Join(cosigners, ", ")))
	return nil
}
