package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/witnessnet/witnessnet/internal/client"
)

// runAudit checks that the log only grows and that every server shows the same log, keeping the
// last verified checkpoint in --state; with --check-evidence it verifies an evidence file
// offline instead.
func runAudit(e *env, args []string) error {
	fs := e.flags("audit")
	servers := fs.StringArray("server", nil, "base URL of a node; repeat for every node to compare")
	policyPath := fs.String("policy", "", "C2SP tlog-policy")
	state := fs.String("state", "", "directory for the last verified checkpoint and evidence files")
	full := fs.Bool("full", false, "download every entry, re-verify its signatures and recompute the root")
	every := fs.Duration("interval", 0, "audit again at this interval until interrupted (0: once)")
	evidence := fs.String("check-evidence", "", "verify this evidence file offline and name who signed both sides")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	policy, err := client.LoadPolicy(*policyPath)
	if err != nil {
		return err
	}
	if *evidence != "" {
		ev, err := client.CheckEvidenceFile(policy, *evidence)
		if err != nil {
			return fmt.Errorf("%w: %v", client.ErrCheck, err)
		}
		e.result(ev, fmt.Sprintf("valid evidence (%s): two checkpoints of one log that cannot both be true\nsigned both: %s\n", ev.Kind, strings.Join(ev.SignedBoth, ", ")))
		return nil
	}
	if len(*servers) == 0 || *state == "" {
		return usagef("--server and --state are required (or --check-evidence FILE)")
	}
	cfg := client.AuditConfig{Servers: *servers, Policy: policy, StateDir: *state, Full: *full, Progress: auditProgress(e)}
	for {
		rep, err := client.Audit(cfg)
		if err != nil {
			if rep != nil && len(rep.EvidenceFiles) > 0 {
				fmt.Fprintf(e.stderr, "ALARM: inconsistent checkpoints; evidence written to %s\n", strings.Join(rep.EvidenceFiles, ", "))
			}
			if *every == 0 || errors.Is(err, client.ErrCheck) {
				return err
			}
			fmt.Fprintf(e.stderr, "audit: %v (retrying in %s)\n", err, *every)
		} else {
			text := fmt.Sprintf("OK: %d server(s) consistent; checkpoint size %d (was %d) cosigned by %s\n", len(*servers), rep.Size, rep.Previous, strings.Join(rep.Cosigners, ", "))
			if rep.Gossiped > 0 {
				text += fmt.Sprintf("compared with %d checkpoint(s) members gossiped among themselves\n", rep.Gossiped)
			}
			if *full {
				text += fmt.Sprintf("re-verified %d entries and recomputed the root\n", rep.Entries)
			}
			for _, l := range rep.Behind {
				text += fmt.Sprintf("WARNING: %s serves checkpoint size %d, behind the newest %d (stale, partitioned or withholding entries)\n", l.Server, l.Size, l.Newest)
			}
			e.result(rep, text)
		}
		if *every == 0 {
			return nil
		}
		time.Sleep(*every)
	}
}

// auditProgress draws a progress bar on a terminal and stays quiet otherwise.
func auditProgress(e *env) func(done, total uint64) {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(done, total uint64) {
		const width = 30
		filled := int(width * done / max(total, 1))
		fmt.Fprintf(f, "\rentries [%s%s] %d/%d", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total)
		if done >= total {
			fmt.Fprintln(f)
		}
	}
}
