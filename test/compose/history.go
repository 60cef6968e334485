package compose

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Kind says what an operation did.
type Kind int

const (
	// Append submitted one new entry.
	Append Kind = iota
	// Read asked a node for the entry at one index.
	Read
)

// Outcome is what the client learned about an operation.
type Outcome int

const (
	// Ok: the node answered with a result (an index for an append, an entry or not-found for a read).
	Ok Outcome = iota
	// Failed: the node answered with a definite refusal (4xx other than 429); the operation MUST
	// NOT have taken effect.
	Failed
	// Unknown: the client never learned the outcome (timeout, 5xx, dropped connection); the
	// operation may or may not have taken effect, and it returns at infinity.
	Unknown
)

// Op is one recorded client operation. Times are nanoseconds since the recorder started.
type Op struct {
	Client  int
	Kind    Kind
	Outcome Outcome
	Call    int64
	Return  int64 // meaningless when Outcome is Unknown

	// Entry is the identity ("sha256:<hex>") the append submitted, or the one a read returned.
	Entry string
	// Index is the index an append was acknowledged at, or the index a read asked for.
	Index uint64
	// Found says a read got the entry (false: the node answered not found).
	Found bool

	Node   string // the node that gave the final answer
	Status int    // its HTTP status, 0 for a transport error
	Err    string // what went wrong, for the report
}

// Recorder collects the operations of concurrent clients. Its clock is monotonic.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder starts a recorder; its clock is zero now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the recorder's clock.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// At converts a wall-clock instant to the recorder's clock.
func (r *Recorder) At(t time.Time) int64 { return int64(t.Sub(r.start)) }

// Add records one finished operation.
func (r *Recorder) Add(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns a copy of the history so far, ordered by call time.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	out := append([]Op(nil), r.ops...)
	r.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// Acked returns the acknowledged appends: entry identity to index.
func Acked(ops []Op) map[string]uint64 {
	out := make(map[string]uint64)
	for _, op := range ops {
		if op.Kind == Append && op.Outcome == Ok {
			out[op.Entry] = op.Index
		}
	}
	return out
}

// Window is a span of the recorder's clock.
type Window struct{ From, To int64 }

// Unavailability is the longest stretch inside w with no acknowledged append: from w.From to the
// first acknowledgement, between two acknowledgements, or from the last one to w.To. With a
// workload that appends continuously this is how long writes were unavailable.
func Unavailability(ops []Op, w Window) time.Duration {
	var acks []int64
	for _, op := range ops {
		if op.Kind == Append && op.Outcome == Ok && op.Return >= w.From && op.Return <= w.To {
			acks = append(acks, op.Return)
		}
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
	prev, worst := w.From, int64(0)
	for _, a := range append(acks, w.To) {
		worst = max(worst, a-prev)
		prev = a
	}
	return time.Duration(worst)
}

// AckedDuring counts appends acknowledged (returned) inside w.
func AckedDuring(ops []Op, w Window) int {
	n := 0
	for _, op := range ops {
		if op.Kind == Append && op.Outcome == Ok && op.Return >= w.From && op.Return <= w.To {
			n++
		}
	}
	return n
}

// Summary counts a history's operations by kind and outcome.
type Summary struct {
	Appends, Acked, AppendFailed, AppendUnknown int
	Reads, ReadFound, ReadNotFound, ReadUnknown int
}

// Summarize counts ops.
func Summarize(ops []Op) Summary {
	var s Summary
	for _, op := range ops {
		switch {
		case op.Kind == Append:
			s.Appends++
			switch op.Outcome {
			case Ok:
				s.Acked++
			case Failed:
				s.AppendFailed++
			default:
				s.AppendUnknown++
			}
		default:
			s.Reads++
			switch {
			case op.Outcome != Ok:
				s.ReadUnknown++
			case op.Found:
				s.ReadFound++
			default:
				s.ReadNotFound++
			}
		}
	}
	return s
}

// infinity is the return time of an operation whose outcome is unknown.
const infinity = math.MaxInt64
