// Command client is witnessnet's command-line client for submitters, co-signers, verifiers and
// auditors.
//
// Exit status: 0 success, 1 a failed check (or an unreachable server), 2 bad usage.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
	"github.com/witnessnet/witnessnet/internal/client"
)

const usage = `usage: client <command> [flags]

commands:
  keygen   make a signing key pair            client keygen --out alice
  key      a public key as a layout lists it  client key dev.pub
  sign     sign a layout, link or payload     client sign --key alice.key [--format dsse|metablock] --out env.json doc.json
  submit   submit envelopes to the log        client submit --server URL --key-file alice.pub env.json [more.json...]
  get      fetch an entry and check it        client get --server URL 12
  prove    prove an entry is in a checkpoint  client prove --server URL --policy policy.txt 12
  run      record a step, sign, submit        client run --step build --key dev.key --products app --server URL --layout sha256:.. -- make
  cosign   add a signature to a pending link  client cosign --server URL --key rb2.key --layout sha256:.. --step rebuild --products app
  verify   verify a supply chain from the log client verify --server URL --policy policy.txt --layout sha256:.. --layout-key owner.pub --products app
  audit    check the log only grows, one view client audit --server URL... --policy policy.txt --state DIR [--full]

Every command takes --json for machine-readable output. Exit status: 0 success, 1 failed check,
2 bad usage.
`

// errUsage marks a usage error (exit 2).
var errUsage = client.ErrUsage

type command struct {
	run func(env *env, args []string) error
}

var commands = map[string]command{
	"keygen": {runKeygen},
	"key":    {runKey},
	"sign":   {runSign},
	"submit": {runSubmit},
	"get":    {runGet},
	"prove":  {runProve},
	"run":    {runRun},
	"cosign": {runCosign},
	"verify": {runVerify},
	"audit":  {runAudit},
}

// env is what every command writes to.
type env struct {
	stdout, stderr io.Writer
	json           bool
	printed        bool // a result was written: a failure adds no second JSON value
}

// result prints v as JSON with --json, else the human text.
func (e *env) result(v any, text string) {
	e.printed = true
	if e.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return
	}
	fmt.Fprint(e.stdout, text)
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "client: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	e := &env{stdout: stdout, stderr: stderr}
	err := cmd.run(e, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "client %s: %v\n", args[0], err)
		return 2
	default:
		if e.json && !e.printed {
			_ = json.NewEncoder(stdout).Encode(map[string]any{"ok": false, "error": err.Error()})
		}
		fmt.Fprintf(stderr, "client %s: %v\n", args[0], err)
		return 1
	}
}

// flags makes a flag set with --json bound to env.
func (e *env) flags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("client "+name, pflag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.BoolVar(&e.json, "json", false, "machine-readable output")
	return fs
}

// parse parses flags and wraps flag errors as usage errors.
func parse(fs *pflag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if nargs >= 0 && fs.NArg() != nargs {
		return fmt.Errorf("%w: want %d argument(s), got %d", errUsage, nargs, fs.NArg())
	}
	return nil
}

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}
