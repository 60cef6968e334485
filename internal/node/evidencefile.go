package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// evidenceFile is where a node keeps the evidence it found, one JSON record per line, appended
// and synced before the alarm is raised. It survives restarts: evidence of an equivocating
// member keeps the node from cosigning until an operator has read the file and moved it away.
const evidenceFile = "evidence.jsonl"

// loadEvidence reads the evidence kept by earlier runs. A torn last line (a crash while
// appending) is ignored; any other unreadable line is an error: the operator must look.
func (c *collector) loadEvidence() error {
	f, err := os.Open(filepath.Join(c.n.cfg.DataDir, evidenceFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", evidenceFile, err)
	}
	for i, l := range lines {
		var e Evidence
		if err := json.Unmarshal(l, &e); err != nil {
			if i == len(lines)-1 {
				break
			}
			return fmt.Errorf("%s line %d: %w", evidenceFile, i+1, err)
		}
		c.evidence = append(c.evidence, e)
		if e.Kind == "equivocation" {
			c.halted = true
		}
	}
	if c.halted {
		c.n.log.Error("ALARM: evidence of an equivocating member from before this start; not cosigning until an operator moves the evidence file away",
			"file", filepath.Join(c.n.cfg.DataDir, evidenceFile), "records", len(c.evidence))
	}
	return nil
}

// keepEvidence appends e to the evidence file and syncs it.
func (c *collector) keepEvidence(e Evidence) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(c.n.cfg.DataDir, evidenceFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
