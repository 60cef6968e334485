package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

func runSubmit(e *env, args []string) error {
	fs := e.flags("submit")
	server := fs.String("server", "", "base URL of a node")
	layout := fs.String("layout", "", "sha256:<hex> of the registered layout the link belongs to")
	keyFiles := fs.StringArray("key-file", nil, "public key (PEM) of a signer not named by a layout; repeatable")
	if err := parse(fs, args, -1); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name at least one envelope file")
	}
	if *server == "" {
		return usagef("--server is required")
	}
	var envs [][]byte
	for _, f := range fs.Args() {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		raw = bytes.TrimSpace(raw)
		if _, err := intoto.ParseMetadata(raw); err != nil {
			if fs.NArg() > 1 {
				return fmt.Errorf("%s: %w", f, err)
			}
			return err
		}
		envs = append(envs, raw)
	}
	var keys []string
	for _, f := range *keyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := verify.ParsePublicKey(b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		keys = append(keys, string(b))
	}
	if len(envs) > 1 {
		return submitMany(e, client.NewAPI(*server), fs.Args(), envs, *layout, keys)
	}
	body, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(envs[0]), "layout": *layout, "public_keys": keys})
	status, data, err := client.NewAPI(*server).Do(http.MethodPost, "/v1/entries", body)
	if err != nil {
		return err
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		return err
	}
	out["status"] = status
	e.result(out, submitted(status, out["index"], out["entry"], out["pending"], out["signatures"], out["threshold"]))
	return nil
}

// submitted says what became of one submission.
func submitted(status int, index, entry, pending, signatures, threshold any) string {
	switch status {
	case http.StatusCreated:
		return fmt.Sprintf("appended at index %v\nentry %v\n", index, entry)
	case http.StatusOK:
		return fmt.Sprintf("already in the log at index %v\nentry %v\n", index, entry)
	default:
		return fmt.Sprintf("pending %v: %v of %v signatures\n", pending, signatures, threshold)
	}
}

// submitMany submits several envelopes through POST /v1/entries/batch and reports each; it
// fails (exit 1) if the node refused any.
func submitMany(e *env, a *client.API, files []string, envs [][]byte, layout string, keys []string) error {
	subs := make([]client.Submission, len(envs))
	for i, env := range envs {
		subs[i] = client.Submission{Envelope: env, Layout: layout, PublicKeys: keys}
	}
	results, err := client.SubmitBatch(a, subs)
	if err != nil {
		return err
	}
	type fileResult struct {
		File string `json:"file"`
		client.BatchResult
	}
	out := make([]fileResult, len(results))
	var text strings.Builder
	refused := 0
	for i, r := range results {
		out[i] = fileResult{File: files[i], BatchResult: r}
		if r.Error != "" {
			refused++
			fmt.Fprintf(&text, "%s: refused %d %s: %s\n", files[i], r.Status, r.Error, r.Message)
			continue
		}
		var index any
		if r.Index != nil {
			index = *r.Index
		}
		line := submitted(r.Status, index, r.Entry, r.Pending, r.Signatures, r.Threshold)
		fmt.Fprintf(&text, "%s: %s", files[i], strings.ReplaceAll(strings.TrimSuffix(line, "\n"), "\n", ", ")+"\n")
	}
	e.result(out, text.String())
	if refused > 0 {
		return fmt.Errorf("%w: the node refused %d of %d entries", client.ErrCheck, refused, len(results))
	}
	return nil
}

func runGet(e *env, args []string) error {
	fs := e.flags("get")
	server := fs.String("server", "", "base URL of a node")
	out := fs.String("out", "", "write the envelope here")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if *server == "" {
		return usagef("--server is required")
	}
	en, err := client.FetchEntry(client.NewAPI(*server), fs.Arg(0))
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, en.Envelope, 0o644); err != nil {
			return err
		}
	}
	e.result(en, fmt.Sprintf("index %d\nentry %s\n%s\n", en.Index, en.Entry, en.Envelope))
	return nil
}
