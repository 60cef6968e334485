package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	waltypes "github.com/hashicorp/raft-wal/types"
)

// finishRotation completes a segment rotation of the raft log that a stop cut short, before
// raft-wal opens the log.
//
// raft-wal v0.4.1 seals a full tail segment (writes its index into the file) in the append that
// fills it, and records the seal and the next segment in its metadata afterwards, from another
// goroutine; a truncation seals the tail the same way before recording it. A member killed
// between the two finds, at the next start, a tail segment the metadata calls open whose file
// is sealed, and raft-wal (which does not handle that case on open) refuses every later append
// with "segment is sealed": the member stays behind until the leader happens to send it a
// snapshot. Here the metadata is brought to what the rotation would have recorded: the tail
// sealed at the last entry its file holds, and a new, empty tail after it, whose file raft-wal
// creates when it opens the log (as after a stop just past a rotation). It reports whether it
// changed anything.
func finishRotation(dir string, segmentBytes int, log *slog.Logger) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, metadb.FileName)); errors.Is(err, os.ErrNotExist) {
		return false, nil // a new log
	}
	var meta metadb.BoltMetaDB
	state, err := meta.Load(dir)
	if err != nil {
		return false, fmt.Errorf("raft log metadata: %w", err)
	}
	defer meta.Close()
	if len(state.Segments) == 0 {
		return false, nil
	}
	tail := state.Segments[len(state.Segments)-1]
	if !tail.SealTime.IsZero() {
		return false, nil
	}
	w, err := segment.NewFiler(dir, walfs.New()).RecoverTail(tail)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // raft-wal creates it
	}
	if err != nil {
		return false, fmt.Errorf("raft log tail segment: %w", err)
	}
	sealed, indexStart, err := w.Sealed()
	last := w.LastIndex()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil || !sealed {
		return false, err
	}
	if last < tail.BaseIndex {
		last = tail.BaseIndex - 1 // sealed with no entries
	}
	now := time.Now()
	tail.SealTime, tail.MaxIndex, tail.IndexStart = now, last, indexStart
	state.Segments[len(state.Segments)-1] = tail
	state.Segments = append(state.Segments, segmentInfo(state.NextSegmentID, last+1, segmentBytes, now))
	state.NextSegmentID++
	if err := meta.CommitState(state); err != nil {
		return false, fmt.Errorf("raft log metadata: %w", err)
	}
	log.Warn("finished a raft log segment rotation cut short by a stop", "sealed_segment", tail.ID, "last_index", last)
	return true, nil
}

// segmentInfo is a new tail segment as raft-wal makes one.
func segmentInfo(id, base uint64, segmentBytes int, now time.Time) waltypes.SegmentInfo {
	return waltypes.SegmentInfo{ID: id, BaseIndex: base, MinIndex: base, SizeLimit: uint32(segmentBytes),
		Codec: wal.CodecBinaryV1, CreateTime: now}
}
