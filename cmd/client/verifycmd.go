package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// runVerify verifies a supply chain against the log (or offline, from a bundle): every link it
// relies on must be in a checkpoint that satisfies the policy.
func runVerify(e *env, args []string) error {
	fs := e.flags("verify")
	servers := fs.StringArray("server", nil, "base URL of a node; repeat to cross-check several")
	policyPath := fs.String("policy", "", "C2SP tlog-policy: which checkpoints to trust")
	layout := fs.String("layout", "", "sha256:<hex> of the registered layout")
	layoutKeys := fs.StringArray("layout-key", nil, "public key (PEM) that must have signed the layout; repeatable")
	products := fs.StringArray("products", nil, "final product file or directory to check; repeatable")
	lstrip := fs.StringArray("lstrip-paths", nil, "prefix to strip from product names; repeatable")
	params := fs.StringArray("param", nil, "layout parameter KEY=VALUE; repeatable")
	bundlePath := fs.String("bundle", "", "verify offline from this bundle instead of the servers")
	writeBundle := fs.String("write-bundle", "", "write a bundle for offline verification")
	wait := fs.Duration("wait", 15*time.Second, "how long to wait for a cosigned checkpoint that covers every link")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if len(*layoutKeys) == 0 || *policyPath == "" || (*bundlePath == "" && (len(*servers) == 0 || *layout == "")) {
		return usagef("--policy, --layout-key and either --bundle or --server with --layout are required")
	}
	policy, err := client.LoadPolicy(*policyPath)
	if err != nil {
		return err
	}
	opts := client.VerifyOptions{Layout: *layout, Params: map[string]string{}}
	for _, path := range *layoutKeys {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		k, err := intoto.ParseKeyPEM(data, "")
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		opts.LayoutKeys = append(opts.LayoutKeys, k)
	}
	for _, kv := range *params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("--param %q: want KEY=VALUE", kv)
		}
		opts.Params[k] = v
	}
	if len(*products) > 0 {
		if opts.Products, err = client.RecordArtifacts(*products, client.RecordOptions{Lstrip: *lstrip}); err != nil {
			return err
		}
	}
	var b *client.Bundle
	var pending []client.PendingGroup
	if *bundlePath != "" {
		b, err = client.ReadBundle(*bundlePath)
	} else {
		b, pending, err = client.FetchBundle(policy, *servers, *layout, *wait)
	}
	if err != nil {
		return err
	}
	if *writeBundle != "" {
		data, _ := json.MarshalIndent(b, "", "  ")
		if err := os.WriteFile(*writeBundle, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	out, err := client.VerifyBundle(policy, b, opts)
	out.Pending = pending
	if err != nil {
		out.Error = err.Error()
		e.result(out, "FAIL: "+err.Error()+"\n"+describeReport(out))
		return fmt.Errorf("%w: %v", client.ErrCheck, err)
	}
	e.result(out, "PASS: the supply chain verifies against the log\n"+describeReport(out))
	return nil
}

func describeReport(o *client.Outcome) string {
	var b strings.Builder
	if o.Layout != "" {
		fmt.Fprintf(&b, "layout %s, %d link(s) from the log\n", o.Layout, o.Links)
	}
	if o.CheckpointSize > 0 {
		fmt.Fprintf(&b, "checkpoint size %d cosigned by %s\n", o.CheckpointSize, strings.Join(o.Cosigners, ", "))
	}
	if o.Report != nil {
		for _, s := range o.Report.Steps {
			fmt.Fprintf(&b, "  step %s: %d of %d functionaries counted", s.Name, len(s.Counted), s.Threshold)
			for _, d := range s.Dissent {
				fmt.Fprintf(&b, "; dissent by %s", shortIDs(d.Functionaries))
			}
			b.WriteString("\n")
		}
		for _, w := range o.Report.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", w)
		}
	}
	for _, p := range o.Pending {
		fmt.Fprintf(&b, "  pending (not in the log): step %s, %d of %d signatures, payload %s\n", p.Step, p.Signatures, p.Threshold, p.Payload)
	}
	return b.String()
}

func shortIDs(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(12, len(id))]
	}
	return strings.Join(out, ", ")
}
