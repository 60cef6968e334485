package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/witnessnet/witnessnet/internal/client"
)

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
	policy, err := client.LoadPolicy(*policyPath)
	if err != nil {
		return err
	}
	cps, err := client.FetchCheckpoints(policy, *servers)
	if err != nil {
		return err
	}
	first := cps[0]
	en, err := client.FetchEntry(first.Server, fs.Arg(0))
	if err != nil {
		return err
	}
	if en.Index >= first.Checkpoint.Size {
		return fmt.Errorf("%w: entry %d is not yet covered by the cosigned checkpoint (size %d); try again shortly", client.ErrCheck, en.Index, first.Checkpoint.Size)
	}
	var p client.InclusionProof
	if err := first.Server.GetJSON(fmt.Sprintf("/v1/proof/inclusion?index=%d&size=%d", en.Index, first.Checkpoint.Size), &p); err != nil {
		return err
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, en.Index, first.Checkpoint.Size, rfc6962.DefaultHasher.HashLeaf(en.Leaf), p.Hashes, first.Checkpoint.Root); err != nil {
		return fmt.Errorf("%w: inclusion of entry %d: %v", client.ErrCheck, en.Index, err)
	}
	cosigners := slices.Clone(first.Report.Cosigners)
	slices.Sort(cosigners)
	res := proveResult{OK: true, Index: en.Index, Entry: en.Entry, CheckpointSize: first.Checkpoint.Size, Root: first.Checkpoint.Root, Cosigners: cosigners, Servers: *servers}
	e.result(res, fmt.Sprintf("OK: entry %d (%s) is in the log\ncheckpoint size %d, cosigned by %s\n",
		en.Index, en.Entry, first.Checkpoint.Size, strings.Join(cosigners, ", ")))
	return nil
}
