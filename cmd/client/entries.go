package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/witnessnet/witnessnet/internal/ledger"
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
	status, data, err := newAPI(*server).do(http.MethodPost, "/v1/entries", body)
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

// entryPath is the API path of an entry given as an index or sha256:<hex>.
func entryPath(id string) (string, error) {
	if strings.HasPrefix(id, "sha256:") {
		if _, err := ledger.ParseIdentity(id); err != nil {
			return "", usagef("%v", err)
		}
		return "/v1/entries/" + id, nil
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return "", usagef("entry %q: want an index or sha256:<hex>", id)
		}
	}
	if id == "" {
		return "", usagef("entry: want an index or sha256:<hex>")
	}
	return "/v1/entries/" + id, nil
}

// fetchEntry gets an entry and checks it locally: the envelope hashes to the entry ID, and the
// Merkle leaf carries (or commits to) exactly that envelope.
func fetchEntry(a *api, id string) (*entry, error) {
	path, err := entryPath(id)
	if err != nil {
		return nil, err
	}
	var en entry
	if err := a.getJSON(path, &en); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(en.Envelope)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != en.Entry {
		return nil, fmt.Errorf("entry %d: envelope hashes to %s, server says %s", en.Index, got, en.Entry)
	}
	if strings.HasPrefix(id, "sha256:") && id != en.Entry {
		return nil, fmt.Errorf("asked for %s, got %s", id, en.Entry)
	}
	leaf, err := ledger.ParseLeaf(en.Leaf)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", en.Index, err)
	}
	switch {
	case leaf.Envelope != nil && !bytes.Equal(leaf.Envelope, en.Envelope):
		return nil, fmt.Errorf("entry %d: the leaf carries another envelope", en.Index)
	case leaf.Envelope == nil && "sha256:"+leaf.EnvelopeSHA256 != en.Entry:
		return nil, fmt.Errorf("entry %d: the leaf commits to another envelope", en.Index)
	}
	return &en, nil
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
	en, err := fetchEntry(newAPI(*server), fs.Arg(0))
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

var errCheck = errors.New("check failed")
