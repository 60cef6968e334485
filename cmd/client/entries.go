package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/verify"
	"github.com/witnessnet/witnessnet/internal/verify/intoto"
)

func runSubmit(e *env, args []string) error {
	fs := e.flags("submit")
	server := fs.String("server", "", "base URL of a node")
	layout := fs.String("layout", "", "sha256:<hex> of the registered layout the link belongs to")
	keyFiles := fs.StringArray("key-file", nil, "public key (PEM) of a signer not named by a layout; repeatable")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if *server == "" {
		return usagef("--server is required")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	raw = bytes.TrimSpace(raw)
	if _, err := intoto.ParseMetadata(raw); err != nil {
		return err
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
	body, _ := json.Marshal(map[string]any{"envelope": json.RawMessage(raw), "layout": *layout, "public_keys": keys})
	status, data, err := client.NewAPI(*server).Do(http.MethodPost, "/v1/entries", body)
	if err != nil {
		return err
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		return err
	}
	out["status"] = status
	switch status {
	case http.StatusCreated:
		e.result(out, fmt.Sprintf("appended at index %v\nentry %v\n", out["index"], out["entry"]))
	case http.StatusOK:
		e.result(out, fmt.Sprintf("already in the log at index %v\nentry %v\n", out["index"], out["entry"]))
	default:
		e.result(out, fmt.Sprintf("pending %v: %v of %v signatures\n", out["pending"], out["signatures"], out["threshold"]))
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
