package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
)

// rebuildCmd prepares a stopped member to be rebuilt from its peers: it moves the replicated
// state (raft/, state.db) out of the way, into a dated directory inside the data directory, and
// keeps what is this member's alone (witness.db, evidence.jsonl). On its next start the node
// does not bootstrap: its witness state says it has cosigned before, so it waits for the leader,
// which sends it a snapshot and the log; it checks what it receives against its own tree and
// cosigns only what is consistent with what it cosigned before.
func rebuildCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("witness rebuild", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "the stopped node's data directory (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dataDir == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "witness rebuild: --data-dir is required (stop the node first)")
		return 2
	}
	if _, err := os.Stat(filepath.Join(*dataDir, "witness.db")); err != nil {
		fmt.Fprintf(stderr, "witness rebuild: %s has no witness.db; a member without its witness state is a new member (give it a new witness key)\n", *dataDir)
		return 1
	}
	aside := filepath.Join(*dataDir, "rebuilt-"+time.Now().UTC().Format("20060102T150405Z"))
	moved := 0
	for _, name := range []string{"raft", "state.db", "state.db.restore"} {
		from := filepath.Join(*dataDir, name)
		if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(aside, 0o700); err != nil {
			fmt.Fprintf(stderr, "witness rebuild: %v\n", err)
			return 1
		}
		if err := os.Rename(from, filepath.Join(aside, name)); err != nil {
			fmt.Fprintf(stderr, "witness rebuild: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "moved %s to %s\n", from, aside)
		moved++
	}
	if moved == 0 {
		fmt.Fprintf(stdout, "%s holds no replicated state; nothing to move\n", *dataDir)
	}
	fmt.Fprintln(stdout, "kept witness.db (and evidence.jsonl, if any); start the node: it will be caught up by its peers")
	return 0
}
