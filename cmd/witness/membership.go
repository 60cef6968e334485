package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/witnessnet/witnessnet/internal/client"
	"github.com/witnessnet/witnessnet/internal/localnet"
	"github.com/witnessnet/witnessnet/internal/node"
	"github.com/witnessnet/witnessnet/internal/p2p"
	"github.com/witnessnet/witnessnet/internal/verify"
)

// keygenCmd makes one member's keys, for a member joining an existing network or a network
// set up by hand: log.key, witness.key and p2p.key in DIR, and the lines the member's entries
// in policy.txt and membership.txt need, on standard output.
func keygenCmd(args []string, stdout, stderr io.Writer) int {
	return exitCode("keygen", keygen(args, stdout, stderr), stderr)
}

func keygen(args []string, stdout, stderr io.Writer) error {
	fs := flagSet("keygen", stderr)
	name := fs.String("name", "", "member name: the witness key's name (required)")
	origin := fs.String("origin", DefaultOrigin, "the network's log origin: the log key's name")
	url := fs.String("url", "", "the member's public base URL, for its policy line (required)")
	dir := fs.String("dir", ".", "directory to write the keys to")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *url == "" || fs.NArg() != 0 {
		return &usageError{"--name and --url are required"}
	}
	for _, f := range []string{"log.key", "witness.key", "p2p.key"} {
		if _, err := os.Stat(filepath.Join(*dir, f)); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite a key", filepath.Join(*dir, f))
		}
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	m, err := localnet.NewMember(*name, *origin)
	if err != nil {
		return err
	}
	for file, key := range map[string]string{"log.key": m.LogSkey, "witness.key": m.WitSkey} {
		if err := os.WriteFile(filepath.Join(*dir, file), []byte(key+"\n"), 0o600); err != nil {
			return err
		}
	}
	p2pKey, err := p2p.LoadIdentity(filepath.Join(*dir, "p2p.key")) // creates it
	if err != nil {
		return err
	}
	id, err := p2p.PeerID(p2pKey.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s, %s and %s; keep them private\n",
		filepath.Join(*dir, "log.key"), filepath.Join(*dir, "witness.key"), filepath.Join(*dir, "p2p.key"))
	fmt.Fprintf(stdout, "log %s\nwitness %s %s %s\npeer %s %s\n", m.LogVkey, *name, m.WitVkey, strings.TrimRight(*url, "/"), *name, id)
	return nil
}

// membershipCmd signs, merges and submits membership versions: every member whose signature
// the next version needs signs the same text with its witness key; the copies are merged and
// submitted to any member, which checks them against the current version.
func membershipCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, membershipUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "sign":
		err = membershipSign(args[1:], stdout, stderr)
	case "merge":
		err = membershipMerge(args[1:], stdout, stderr)
	case "submit":
		err = membershipSubmit(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, membershipUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "witness membership: unknown command %q\n\n%s", args[0], membershipUsage)
		return 2
	}
	return exitCode("membership "+args[0], err, stderr)
}

// exitCode reports a command's error and turns it into the exit status: 0 for success or
// --help, 2 for bad usage, 1 for anything else.
func exitCode(cmd string, err error, stderr io.Writer) int {
	var usageErr *usageError
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "witness %s: %v\n", cmd, err)
		return 2
	}
	fmt.Fprintf(stderr, "witness %s: %v\n", cmd, err)
	return 1
}

const membershipUsage = `usage: witness membership <command> [flags]

  sign    --key witness.key --name NAME [--out FILE] NEXT.txt
          sign the next membership version's text as one member
  merge   [--out FILE] SIGNED...
          merge members' signed copies of one text into one document
  submit  --server URL SIGNED
          submit the merged document to a member (POST /v1/membership)
`

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func flagSet(cmd string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("witness "+cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	return nil
}

func writeOut(path string, data []byte, stdout io.Writer) error {
	if path == "" || path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func membershipSign(args []string, stdout, stderr io.Writer) error {
	fs := flagSet("membership sign", stderr)
	keyPath := fs.String("key", "", "the member's witness.key")
	name := fs.String("name", "", "the member's name (the witness key's name)")
	out := fs.String("out", "", "output file (default: standard output)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyPath == "" || *name == "" || fs.NArg() != 1 {
		return &usageError{"--key, --name and one text file are required"}
	}
	skey, err := readKey(*keyPath)
	if err != nil {
		return err
	}
	priv, err := node.WitnessPrivateKey(skey)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyPath, err)
	}
	text, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	if _, err := verify.ParseMembershipText(text); err != nil {
		return err
	}
	signed, err := verify.SignMembership(text, *name, priv)
	if err != nil {
		return err
	}
	return writeOut(*out, signed, stdout)
}

func membershipMerge(args []string, stdout, stderr io.Writer) error {
	fs := flagSet("membership merge", stderr)
	out := fs.String("out", "", "output file (default: standard output)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &usageError{"at least one signed copy is required"}
	}
	var copies [][]byte
	for _, p := range fs.Args() {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		copies = append(copies, b)
	}
	merged, err := verify.AddMembershipSignatures(copies...)
	if err != nil {
		return err
	}
	return writeOut(*out, merged, stdout)
}

func membershipSubmit(args []string, stdout, stderr io.Writer) error {
	fs := flagSet("membership submit", stderr)
	server := fs.String("server", "", "a member's base URL")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *server == "" || fs.NArg() != 1 {
		return &usageError{"--server and one signed document are required"}
	}
	doc, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	// A member that knows no leader yet (an election under way) answers 503: the API retries
	// after its Retry-After, as it does 429.
	_, body, err := client.NewAPI(*server).Send(http.MethodPost, "/v1/membership", "text/plain", doc)
	if err != nil {
		return fmt.Errorf("%s: %w", *server, err)
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}
