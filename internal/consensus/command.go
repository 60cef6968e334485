package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrMalformedCommand is the deterministic rejection of log data that does not decode.
var ErrMalformedCommand = errors.New("malformed command")

// Command is one replicated command: a kind the state machine interprets, the proposer's clock
// (the state machine never reads its own), and the records it carries. Index and Term are set
// when the command is applied.
type Command struct {
	Index   uint64
	Term    uint64
	Kind    uint8
	Stamp   time.Time
	Records [][]byte
}

const commandVersion = 1

// EncodeCommand encodes kind, stamp and records:
// version byte, kind byte, stamp (int64 Unix nanoseconds, big endian), uvarint record count,
// then each record as uvarint length and bytes.
func EncodeCommand(kind uint8, stamp time.Time, records [][]byte) []byte {
	n := 2 + 8 + binary.MaxVarintLen64
	for _, r := range records {
		n += binary.MaxVarintLen64 + len(r)
	}
	out := make([]byte, 0, n)
	out = append(out, commandVersion, kind)
	out = binary.BigEndian.AppendUint64(out, uint64(stamp.UnixNano()))
	out = binary.AppendUvarint(out, uint64(len(records)))
	for _, r := range records {
		out = binary.AppendUvarint(out, uint64(len(r)))
		out = append(out, r...)
	}
	return out
}

// SplitBytes is the size Split keeps commands within. Raft stores, sends and applies commands
// in batches of a number of them (MaxAppendEntries), and a follower catching up queues up to 128
// such batches for its state machine: the command's size is what bounds that memory (16 × 32
// KiB × 128 = 64 MiB; at 256 KiB a member catching up a million entries reached 864 MiB).
// Commands this size cost no more CPU per entry than commands of 256 KiB (BENCHMARKS.md).
// Raft's transport decodes a log entry's data into one buffer of exactly its size only up to
// 256 KiB, which is why commands were cut at all.
const SplitBytes = 32 << 10

// Split cuts records, in order, into groups whose commands (EncodeCommand) each take at most
// SplitBytes; a record too large for that is a group of its own. Records are not copied.
func Split(records [][]byte) [][][]byte {
	var out [][][]byte
	from, size := 0, 0
	for i, r := range records {
		n := binary.MaxVarintLen64 + len(r)
		if i > from && size+n > SplitBytes {
			out = append(out, records[from:i])
			from, size = i, 0
		}
		if size == 0 {
			size = 2 + 8 + binary.MaxVarintLen64 // header and record count
		}
		size += n
	}
	return append(out, records[from:])
}

// DecodeCommand decodes what EncodeCommand wrote. Records alias b. Every valid command has exactly
// one encoding: non-minimal varints and trailing bytes are refused.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if len(b) < 10 || b[0] != commandVersion {
		return c, fmt.Errorf("%w: bad header", ErrMalformedCommand)
	}
	c.Kind = b[1]
	c.Stamp = time.Unix(0, int64(binary.BigEndian.Uint64(b[2:10]))).UTC()
	b = b[10:]
	count, k := uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return c, fmt.Errorf("%w: bad record count", ErrMalformedCommand)
	}
	b = b[k:]
	c.Records = make([][]byte, 0, count)
	for range count {
		l, k := uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return c, fmt.Errorf("%w: bad record length", ErrMalformedCommand)
		}
		c.Records = append(c.Records, b[k:k+int(l)])
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return c, fmt.Errorf("%w: %d trailing bytes", ErrMalformedCommand, len(b))
	}
	return c, nil
}

// uvarint is binary.Uvarint that refuses non-minimal encodings.
func uvarint(b []byte) (uint64, int) {
	v, k := binary.Uvarint(b)
	if k > 0 && k != len(binary.AppendUvarint(nil, v)) {
		return 0, -1
	}
	return v, k
}
