package consensus

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// A raft log stopped between sealing its full tail segment and recording the rotation: raft-wal
// alone then refuses every append ("segment is sealed"); after finishRotation the log takes
// appends again and holds every entry.
func TestFinishRotationAfterAStopBetweenSealAndRotate(t *testing.T) {
	const segmentBytes = 4096
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	entry := func(i uint64) *raft.Log {
		return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, 300+int(i%7))}
	}
	segments := func(d string) int {
		m, _ := filepath.Glob(filepath.Join(d, "*.wal"))
		return len(m)
	}
	if changed, err := finishRotation(dir, segmentBytes, quiet); changed || err != nil {
		t.Fatalf("new log: changed %v, %v", changed, err)
	}
	w, err := wal.Open(dir, wal.WithSegmentSize(segmentBytes))
	if err != nil {
		t.Fatal(err)
	}
	// Append until an append seals the tail; keep the metadata from before that append.
	var before []byte
	last := uint64(0)
	for sealed := false; !sealed; {
		if last > 1000 {
			t.Fatal("no segment was sealed")
		}
		if before, err = os.ReadFile(filepath.Join(dir, metadb.FileName)); err != nil {
			t.Fatal(err)
		}
		n := segments(dir)
		last++
		if err := w.StoreLogs([]*raft.Log{entry(last)}); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if segments(dir) > n {
				sealed = true
				break
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, metadb.FileName), before, 0o644); err != nil {
		t.Fatal(err)
	}

	// raft-wal on its own: stuck.
	stuck := t.TempDir()
	if err := os.CopyFS(stuck, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if w, err := wal.Open(stuck, wal.WithSegmentSize(segmentBytes)); err != nil {
		t.Fatal(err)
	} else {
		err := w.StoreLogs([]*raft.Log{entry(last + 1)})
		w.Close()
		if !errors.Is(err, wal.ErrSealed) {
			t.Fatalf("raft-wal took an append after the stop (%v): this repair may no longer be needed", err)
		}
	}

	if changed, err := finishRotation(dir, segmentBytes, quiet); !changed || err != nil {
		t.Fatalf("finishRotation: changed %v, %v", changed, err)
	}
	if changed, err := finishRotation(dir, segmentBytes, quiet); changed || err != nil {
		t.Fatalf("finishRotation again: changed %v, %v", changed, err)
	}
	for round := range 2 {
		w, err := wal.Open(dir, wal.WithSegmentSize(segmentBytes))
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			for range 20 {
				last++
				if err := w.StoreLogs([]*raft.Log{entry(last)}); err != nil {
					t.Fatalf("append %d after the repair: %v", last, err)
				}
			}
		}
		for i := uint64(1); i <= last; i++ {
			var l raft.Log
			if err := w.GetLog(i, &l); err != nil || !bytes.Equal(l.Data, entry(i).Data) {
				t.Fatalf("round %d: entry %d: %v", round, i, err)
			}
		}
		if got, _ := w.LastIndex(); got != last {
			t.Fatalf("round %d: last index %d, want %d", round, got, last)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if changed, err := finishRotation(dir, segmentBytes, quiet); changed || err != nil {
		t.Fatalf("healthy log: changed %v, %v", changed, err)
	}
}
