package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// rebuildCmd prepares a stopped member to be rebuilt from its peers: it moves the replicated
// state (raft/, state.db) out of the way, into a dated directory inside the data directory, and
// keeps what is this member's alone (witness.db, evidence.jsonl). On its next start the node
// does not bootstrap: its witness state says it has cosigned before, so it waits for the leader,
// which sends it a snapshot and the log; it checks what it receives against its own tree and
// cosigns only what is consistent with what it cosigned before.
func rebuildCmd(args []string, stdout, stderr io.Writer) int {
	return exitCode("rebuild", rebuild(args, stdout, stderr), stderr)
}

func rebuild(args []string, stdout, stderr io.Writer) error {
	fs := flagSet("rebuild", stderr)
	dataDir := fs.String("data-dir", "", "the stopped node's data directory (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dataDir == "" || fs.NArg() != 0 {
		return &usageError{"--data-dir is required (stop the node first)"}
	}
	if _, err := os.Stat(filepath.Join(*dataDir, "witness.db")); err != nil {
		return fmt.Errorf("%s has no witness.db; a member without its witness state is a new member (give it a new witness key)", *dataDir)
	}
	aside := filepath.Join(*dataDir, "rebuilt-"+time.Now().UTC().Format("20060102T150405Z"))
	moved := 0
	for _, name := range []string{"raft", "state.db", "state.db.restore"} {
		from := filepath.Join(*dataDir, name)
		if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(aside, 0o700); err != nil {
			return err
		}
		if err := os.Rename(from, filepath.Join(aside, name)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "moved %s to %s\n", from, aside)
		moved++
	}
	if moved == 0 {
		fmt.Fprintf(stdout, "%s holds no replicated state; nothing to move\n", *dataDir)
	}
	fmt.Fprintln(stdout, "kept witness.db (and evidence.jsonl, if any); start the node: it will be caught up by its peers")
	return nil
}
