package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

// runRun records a step as in-toto's run does: hash the materials, run the command, hash the
// products, sign the link, and (with --server) submit it for the named layout.
func runRun(e *env, args []string) error {
	fs := e.flags("run")
	step := fs.String("step", "", "the layout step this records")
	keyPath := fs.String("key", "", "the functionary's private key (PKCS #8 PEM)")
	materials := fs.StringArray("materials", nil, "file or directory read by the step; repeatable")
	products := fs.StringArray("products", nil, "file or directory written by the step; repeatable")
	exclude := fs.StringArray("exclude", nil, "glob of artifacts to leave out; repeatable")
	lstrip := fs.StringArray("lstrip-paths", nil, "prefix to strip from artifact names; repeatable")
	format := fs.String("format", "dsse", "envelope: dsse or metablock")
	out := fs.String("out", "", "also write the signed link here")
	server := fs.String("server", "", "submit the link to this node")
	layout := fs.String("layout", "", "sha256:<hex> of the registered layout (with --server)")
	if err := parse(fs, args, -1); err != nil {
		return err
	}
	if *step == "" || *keyPath == "" {
		return usagef("--step and --key are required")
	}
	if *server != "" && *layout == "" {
		return usagef("--layout is required to submit a link")
	}
	signer, keyID, err := client.LoadSigner(*keyPath)
	if err != nil {
		return err
	}
	opts := client.RecordOptions{Exclude: *exclude, Lstrip: *lstrip}
	mats, err := client.RecordArtifacts(*materials, opts)
	if err != nil {
		return err
	}
	by, code, err := client.RunStep("", fs.Args(), e.stderr, e.stderr)
	if err != nil {
		return err
	}
	prods, err := client.RecordArtifacts(*products, opts)
	if err != nil {
		return err
	}
	link := map[string]any{
		"_type": "link", "name": *step, "command": nonNil(fs.Args()), "materials": mats, "products": prods,
		"byproducts": by, "environment": map[string]any{},
	}
	doc, _ := json.Marshal(link)
	signed, err := client.SignDocument(doc, *format, intoto.PayloadTypeInToto, signer, keyID)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, append(signed, '\n'), 0o644); err != nil {
			return err
		}
	}
	if code != 0 {
		return fmt.Errorf("%w: the command exited %d; the link records it but was not submitted", client.ErrCheck, code)
	}
	res := map[string]any{"step": *step, "materials": len(mats), "products": len(prods), "keyid": keyID}
	text := fmt.Sprintf("recorded step %s: %d material(s), %d product(s)\n", *step, len(mats), len(prods))
	if *server != "" {
		status, body, err := client.Submit(client.NewAPI(*server), signed, *layout, nil)
		if err != nil {
			return err
		}
		res["status"], res["response"] = status, body
		text += describeSubmission(status, body)
	}
	e.result(res, text)
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// describeSubmission renders an answer to POST /v1/entries.
func describeSubmission(status int, out map[string]any) string {
	switch status {
	case http.StatusCreated:
		return fmt.Sprintf("appended at index %v\nentry %v\n", out["index"], out["entry"])
	case http.StatusOK:
		return fmt.Sprintf("already in the log at index %v\n", out["index"])
	case http.StatusAccepted:
		return fmt.Sprintf("pending %v: %v of %v signatures; other functionaries add theirs with client cosign\n", out["pending"], out["signatures"], out["threshold"])
	}
	return fmt.Sprintf("server answered %d\n", status)
}
