package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodesRow runs the nodes row on a small network of witness processes and checks what it
// reports: each process's memory sampled from /proc, the data directories' sizes, with
// -node-profiles a heap profile of each process fetched from its debug listener, a member's
// catch-up after losing its data, a fourth organization's join, and a start with nothing in the
// page cache.
func TestNodesRow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the witness binary and runs three processes")
	}
	profiles := t.TempDir()
	var tab table
	o := options{nodesN: 2000, batch: 200, batchClients: 4, nodeProfiles: profiles}
	if err := benchNodes(context.Background(), o, &tab); err != nil {
		t.Fatal(err)
	}
	if len(tab.rows) != 5 {
		t.Fatalf("rows: %q", tab.rows)
	}
	mem, disk := tab.rows[0], tab.rows[1]
	if !strings.Contains(mem[1], "MiB anonymous at most") || strings.Contains(mem[1], " 0 MiB anonymous") {
		t.Errorf("memory row: %q", mem[1])
	}
	for _, name := range []string{"node1", "node2", "node3"} {
		if !strings.Contains(mem[2], name+" ") || !strings.Contains(disk[1], name+" ") {
			t.Errorf("%s missing from %q / %q", name, mem[2], disk[1])
		}
		if st, err := os.Stat(filepath.Join(profiles, name+"-heap.pprof")); err != nil || st.Size() == 0 {
			t.Errorf("heap profile of %s: %v", name, err)
		}
	}
	if strings.Contains(disk[1], "state.db 0,") {
		t.Errorf("a state.db of no size: %q", disk[1])
	}
	if c := tab.rows[2]; !strings.HasPrefix(c[0], "catch-up") || !strings.HasSuffix(c[1], " ms") || !strings.Contains(c[2], "empty data directory") {
		t.Errorf("catch-up row: %q", c)
	}
	// The fourth organization holds the whole tree only if the leader made it a raft voter after
	// the membership version that names it was applied: the row's figure is that time.
	if c := tab.rows[3]; !strings.HasPrefix(c[0], "catch-up of a new member joining") || !strings.HasSuffix(c[1], " ms") || !strings.Contains(c[2], "node4, a fourth organization") || !strings.Contains(c[2], "MiB from storage") {
		t.Errorf("join row: %q", c)
	}
	if c := tab.rows[4]; !strings.HasPrefix(c[0], "start of a member") || !strings.HasSuffix(c[1], " ms") || !strings.Contains(c[2], "dropped from the page cache") {
		t.Errorf("start row: %q", c)
	}
}
